import type { Command } from "commander";
import { InputError } from "../../errors.js";
import { jetstreamManager } from "@nats-io/jetstream";
import { Catalog, promote, rollback, retire, parseVersion, versionOf, readCheckpoint, updateCatalogCache, type ProcessorRecord, type VersionRecord } from "../../views/index.js";
import { outputOf } from "../../processors/index.js";
import { CliContext } from "../context.js";
import { printJson, renderTable } from "../output.js";

/** `kappa promote`: refuses a version whose lag at this moment is above maxLag unless forced; a compare-and-set on the live pointer. */
export async function runPromote(ctx: CliContext, name: string, version: number, opts: { force?: boolean; maxLag?: number }): Promise<ProcessorRecord> {
  const nc = await ctx.nats();
  const catalog = await Catalog.open(nc, ctx.spec.stream, ctx.spec.replicas);
  const rec = await catalog.require(name);
  const v = versionOf(rec, version);
  if (v.state === "failed" || v.error) throw failedRefusal(name, v);
  if (v.state === "retired") throw new InputError(`${name} v${version} is retired and cannot be made live`, { hint: `deploy or replay a new version (\`kappa replay ${name} --from start\`)`, code: "RETIRED_VERSION" });
  // A frozen version lags by design: promote() refuses it without --force, and says why.
  if (!opts.force && v.untilSeq === undefined) {
    const maxLag = opts.maxLag ?? 0;
    const lag = v.state === "building" ? null : await lagNow(ctx, catalog, name, v);
    if (lag === null || lag > maxLag) {
      throw new InputError(`${name} v${version} has not caught up (${v.state}${lag !== null ? `, lag ${lag}` : v.state === "building" ? "" : ", no progress reported yet"})`, {
        hint: `wait with \`kappa status ${name}\`, allow some lag with --max-lag <n>, or use --force`,
        code: "NOT_CAUGHT_UP",
      });
    }
  }
  const out = await promote(catalog, name, version, { expectedLive: rec.live, force: opts.force === true });
  await keepLocalCopy(ctx, catalog, out);
  return out;
}

/** A failed version can never catch up: say where it failed and what helps, instead of "wait". */
function failedRefusal(name: string, v: VersionRecord): InputError {
  const e = v.error;
  const where = e?.seq ? ` at event ${e.seq} (${e.type})` : "";
  return new InputError(`${name} v${v.version} failed${where}: ${e?.message ?? "see `kappa history`"}`, {
    hint: `deploy a fix (\`kappa deploy <module>\`), or replay the code of a version that works (\`kappa replay ${name} --from start --code-of <v>\`)`,
    code: "FAILED_VERSION",
  });
}

/**
 * How far a version is behind its input stream right now: the stream's head asked for at this moment,
 * minus the freshest checkpoint known (the local view file, else the worker's last report). Stats alone
 * could be seconds old and call a version current while events keep arriving. Null: no progress known.
 */
async function lagNow(ctx: CliContext, catalog: Catalog, name: string, v: VersionRecord): Promise<number | null> {
  const input = v.source ? outputOf(ctx.spec.stream, v.source.processor, v.source.version).stream : ctx.spec.stream;
  const stats = await catalog.stats(name, v.version);
  let local: number | null = null;
  try {
    local = readCheckpoint(ctx.dataDir.viewFile(name, v.version));
  } catch {
    // no data dir here: the worker's report is all there is
  }
  const checkpoint = Math.max(local ?? -1, stats?.checkpoint ?? -1);
  if (checkpoint < 0) return null;
  const head = (await (await jetstreamManager(await ctx.nats())).streams.info(input)).state.last_seq;
  return Math.max(0, head - checkpoint);
}

/** `kappa rollback`: a compare-and-set on the live pointer read here, so a racing promote or rollback makes this one fail, not act twice. */
export async function runRollback(ctx: CliContext, name: string): Promise<ProcessorRecord> {
  const catalog = await Catalog.open(await ctx.nats(), ctx.spec.stream);
  const rec = await catalog.require(name);
  const out = await rollback(catalog, name, { expectedLive: rec.live });
  await keepLocalCopy(ctx, catalog, out);
  return out;
}

/** Parses --max-lag: a whole number of events, 0 or more. */
export function parseMaxLag(text: string): number {
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n)) {
    throw new InputError(`--max-lag ${text} is not a number of events`, { hint: "give a whole number, e.g. --max-lag 100 (0 = fully caught up)", code: "BAD_MAX_LAG" });
  }
  return n;
}

/**
 * Mirrors a catalog change into the data dir's copy, so a query right after sees it even before the worker
 * does; with the record's revision read back, so it never replaces something newer the worker wrote.
 */
async function keepLocalCopy(ctx: CliContext, catalog: Catalog, rec: ProcessorRecord): Promise<void> {
  try {
    const now = await catalog.get(rec.name);
    updateCatalogCache(ctx.dataDir.catalogCache, now?.record ?? rec, now?.revision);
  } catch {
    // no data dir here: the worker's copy catches up by itself
  }
}

export function registerLifecycle(program: Command): void {
  program
    .command("promote")
    .description("make a version live (atomically; readers see no gap)")
    .argument("<processor>")
    .argument("<version>")
    .option("--max-lag <n>", "refuse when the version lags by more than n events", "0")
    .option("--force", "promote even if it has not caught up, or is frozen (serves the past)")
    .action(async (name: string, version: string, o: { maxLag: string; force?: boolean }, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      try {
        const rec = await runPromote(ctx, name, parseVersion(version), { force: o.force === true, maxLag: parseMaxLag(o.maxLag) });
        const prev = rec.history.at(-1)?.previous;
        if (ctx.json) printJson({ processor: name, live: rec.live, previous: prev ?? null });
        else console.log(`${name}: v${rec.live} is live${prev ? ` (was v${prev}; \`kappa rollback ${name}\` swaps back)` : ""}`);
      } finally {
        await ctx.close();
      }
    });
  program
    .command("rollback")
    .description("make the previous live version live again (it kept following the log)")
    .argument("<processor>")
    .action(async (name: string, _o, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      try {
        const rec = await runRollback(ctx, name);
        const prev = rec.history.at(-1)?.previous;
        if (ctx.json) printJson({ processor: name, live: rec.live, previous: prev ?? null });
        else console.log(`${name}: rolled back to v${rec.live}${prev ? ` (v${prev} keeps running; retire it with \`kappa retire ${name} ${prev}\`)` : ""}`);
      } finally {
        await ctx.close();
      }
    });
  program
    .command("retire")
    .description("stop a version that is not live and delete its view file (once no query reads it)")
    .argument("<processor>")
    .argument("<version>")
    .action(async (name: string, version: string, _o, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      try {
        const catalog = await Catalog.open(await ctx.nats(), ctx.spec.stream, ctx.spec.replicas);
        const rec = await retire(catalog, name, parseVersion(version));
        await keepLocalCopy(ctx, catalog, rec);
        if (ctx.json) printJson({ processor: name, retired: parseVersion(version), live: rec.live });
        else console.log(`${name}: v${parseVersion(version)} retired; the worker deletes its file`);
      } finally {
        await ctx.close();
      }
    });
  program
    .command("history")
    .description("deploys, promotions, rollbacks and retirements, with times")
    .argument("<processor>")
    .action(async (name: string, _o, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      try {
        const rec = await (await Catalog.open(await ctx.nats(), ctx.spec.stream, ctx.spec.replicas)).require(name);
        if (ctx.json) printJson(rec.history);
        else console.log(renderTable(["time", "action", "version", "detail"], rec.history.map((h) => [h.at, h.action, `v${h.version}`, [h.previous ? `was v${h.previous}` : "", h.detail ?? ""].filter(Boolean).join("; ")])));
      } finally {
        await ctx.close();
      }
    });
}
