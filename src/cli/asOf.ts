import { KappaError } from "../errors.js";
import { findFrozen, replayProcessor, resolveUntil, outputOf, newestSeed, SnapshotStore, type VersionSeed } from "../processors/index.js";
import { Catalog } from "../views/index.js";
import type { CliContext } from "./context.js";
import { waitForVersion } from "./wait.js";

/** The frozen version that answers a query `--as-of` an offset. */
export interface AsOfVersion {
  version: number;
  /** The last sequence it applied. */
  seq: number;
  /** True when this call registered it (it was built now, not reused). */
  built: boolean;
  /** The snapshot it was built from, when one existed at or before the offset. */
  seed?: VersionSeed;
}

/**
 * Finds the frozen version of a processor as of `offset`, running the live version's code over the log
 * from the start up to the offset; registers and waits for one (progress on stderr) when none exists and
 * `build` allows it. Built once, it is reused by every later query at the same sequence.
 */
export async function frozenVersionAsOf(ctx: CliContext, processor: string, offset: string, opts: { build: boolean; quiet?: boolean; timeoutMs?: number }): Promise<AsOfVersion> {
  const nc = await ctx.nats();
  const catalog = await Catalog.open(nc, ctx.spec.stream);
  const rec = await catalog.require(processor);
  const basisNo = rec.live ?? Math.max(...Object.keys(rec.versions).map(Number));
  const basis = rec.versions[String(basisNo)]!;
  const input = basis.source ? outputOf(ctx.spec.stream, basis.source.processor, basis.source.version).stream : ctx.spec.stream;
  const { untilSeq } = await resolveUntil(nc, input, offset);
  let found = findFrozen(rec, untilSeq, basis.codeHash, basis.source);
  let built = false;
  let seed: VersionSeed | undefined;
  if (!found) {
    if (!opts.build) {
      throw new KappaError("NO_FROZEN_VERSION", `${processor} has no frozen version at seq ${untilSeq} (as of ${offset})`, {
        hint: `drop --no-build to build one, or \`kappa replay ${processor} --from start --until ${untilSeq} --wait\``,
      });
    }
    // The newest snapshot at or before the offset saves replaying what it already holds.
    const store = await SnapshotStore.open(nc, ctx.spec.stream, ctx.spec.replicas).catch(() => null);
    seed = store ? await newestSeed(store, rec, basis, untilSeq).catch(() => undefined) : undefined;
    if (!opts.quiet) {
      process.stderr.write(`${processor}: no version as of seq ${untilSeq} yet — building one ${seed ? `from v${seed.version}'s snapshot at seq ${seed.checkpoint} (${untilSeq - seed.checkpoint} events to replay)` : "from the start of the log"}\n`);
    }
    const r = await replayProcessor(nc, ctx.spec, processor, { from: "start", until: String(untilSeq), codeOf: basisNo, reuse: true, pinSource: true, ...(seed ? { seed } : {}) });
    found = r.version;
    built = !r.unchanged;
  }
  if (found.state === "building") await waitForVersion(catalog, processor, found.version, { quiet: opts.quiet, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
  return { version: found.version, seq: untilSeq, built, ...(seed && built ? { seed } : {}) };
}
