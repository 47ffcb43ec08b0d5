import type { Command } from "commander";
import { jetstreamManager } from "@nats-io/jetstream";
import { deployModule, replayProcessor, outputOf, schemaWarning, type DeployResult, type SchemaWarning } from "../../processors/index.js";
import { Catalog, parseVersion } from "../../views/index.js";
import { InputError } from "../../errors.js";
import { CliContext } from "../context.js";
import { printJson } from "../output.js";
import { waitForVersion } from "../wait.js";

interface DeployFlags {
  from?: string;
  schemaCheck?: boolean;
  until?: string;
  promote?: boolean;
  wait?: boolean;
  codeOf?: string;
  timeout?: string;
}

/** A positive number of seconds from a flag, or an InputError. */
function parseSeconds(text: string, flag: string): number {
  const n = Number(text);
  if (!(n > 0)) throw new InputError(`${flag} ${text} is not a positive number of seconds`, { hint: `e.g. ${flag} 60` });
  return n;
}

function warningsJson(warnings: SchemaWarning[]): { warnings?: SchemaWarning[] } {
  return warnings.length ? { warnings } : {};
}

/**
 * Prints the outcome of a deploy or replay, waiting for catch-up when asked. The build itself notes schema
 * versions the code cannot upcast, so they are printed as the worker reports them, and listed (`--json`)
 * as the catch-up recorded them; without --wait, `kappa status` shows them.
 */
async function finish(ctx: CliContext, r: DeployResult, flags: DeployFlags): Promise<void> {
  const v = r.version;
  if (r.unchanged) {
    const known = (v.schemaWarnings ?? []).map((n) => schemaWarning(r.processor, n));
    for (const w of known) process.stderr.write(`warning: ${w.message}\n`);
    if (ctx.json) printJson({ processor: r.processor, version: v.version, unchanged: true, state: v.state, ...warningsJson(known) });
    else console.log(`${r.processor}: unchanged — v${v.version} already runs this code from ${v.from} (${v.state})`);
    return;
  }
  const frozen = v.untilSeq !== undefined ? `, until ${v.untilSeq}${v.until !== String(v.untilSeq) ? ` (${v.until})` : ""}` : "";
  if (!ctx.json) console.log(`${r.processor}: v${v.version} registered (code ${v.codeHash.slice(0, 12)}, from ${v.from}${frozen}${v.promoteWhenCaughtUp ? ", promotes when caught up" : ""})`);
  if (!flags.wait) {
    if (ctx.json) printJson({ processor: r.processor, version: v.version, state: v.state });
    return;
  }
  const nc = await ctx.nats();
  const catalog = await Catalog.open(nc, ctx.spec.stream, ctx.spec.replicas);
  const input = v.source ? outputOf(ctx.spec.stream, v.source.processor, v.source.version).stream : ctx.spec.stream;
  const jsm = await jetstreamManager(nc);
  const done = await waitForVersion(catalog, r.processor, v.version, {
    quiet: ctx.json,
    logHead: async () => (await jsm.streams.info(input)).state.last_seq,
    onSchemaWarning: (w) => process.stderr.write(`warning: ${w.message}\n`),
    ...(flags.timeout ? { timeoutMs: parseSeconds(flags.timeout, "--timeout") * 1000 } : {}),
  });
  const rec = await catalog.require(r.processor);
  const warnings = (done.schemaWarnings ?? []).map((n) => schemaWarning(r.processor, n));
  if (ctx.json) printJson({ processor: r.processor, version: v.version, state: done.state, live: rec.live, ...warningsJson(warnings), ...(v.untilSeq !== undefined ? { frozenAt: v.untilSeq } : {}) });
  else if (v.untilSeq !== undefined) console.log(`${r.processor}: v${v.version} frozen at ${v.untilSeq} — query it with \`kappa query ${r.processor} --version ${v.version} ...\`; it never follows the log`);
  else console.log(`${r.processor}: v${v.version} caught up — ${rec.live === v.version ? "live" : `not live (live is v${rec.live}); \`kappa promote ${r.processor} ${v.version}\` swaps it in`}`);
}

export function registerDeploy(program: Command): void {
  program
    .command("deploy")
    .description("bundle a processor module (.ts, .js or .sql), store its code and register a new view version")
    .argument("<module>")
    .option("--from <offset>", "where the new version starts: sequence, ISO time, start or end", "start")
    .option("--until <offset>", "apply the events up to this sequence or ISO time, then stop: a frozen version")
    .option("--promote", "swap it in as soon as it has caught up")
    .option("--wait", "show progress and return when caught up (non-zero if it fails)")
    .option("--timeout <seconds>", "give up waiting after this long")
    .option("--no-schema-check", "the build does not note schema versions the code has no upcaster for (the note costs nothing like a second read)")
    .action(async (module: string, flags: DeployFlags, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      try {
        const r = await deployModule(await ctx.nats(), ctx.spec, module, { from: flags.from ?? "start", promote: flags.promote === true, checkSchemas: flags.schemaCheck !== false, ...(flags.until !== undefined ? { until: flags.until } : {}) });
        await finish(ctx, r, flags);
      } finally {
        await ctx.close();
      }
    });
  program
    .command("replay")
    .description("replay the log from an offset into a new version running the live version's code")
    .argument("<processor>")
    .requiredOption("--from <offset>", "sequence, ISO time, start or end")
    .option("--until <offset>", "apply the events up to this sequence or ISO time, then stop: a frozen version")
    .option("--code-of <version>", "run this version's code instead of the live one's")
    .option("--promote", "swap it in as soon as it has caught up")
    .option("--wait", "show progress and return when caught up")
    .option("--timeout <seconds>", "give up waiting after this long")
    .action(async (processor: string, flags: DeployFlags, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      try {
        const r = await replayProcessor(await ctx.nats(), ctx.spec, processor, {
          from: flags.from!,
          promote: flags.promote === true,
          ...(flags.until !== undefined ? { until: flags.until } : {}),
          ...(flags.codeOf ? { codeOf: parseVersion(flags.codeOf) } : {}),
        });
        await finish(ctx, r, flags);
      } finally {
        await ctx.close();
      }
    });
}
