import type { NatsConnection } from "@nats-io/nats-core";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { InputError, KappaError } from "../errors.js";
import { ensureStream, logInfo, parseOffset, formatOffset, firstSeqAtOrAfter, type StreamSpec } from "../log/index.js";
import { Catalog, registerVersion, type Registered, type NewVersion } from "../views/index.js";
import { bundleProcessor } from "./bundle.js";
import { CodeStore, hashCode } from "./codeStore.js";
import { loadProcessor } from "./load.js";
import { checkSqlProcessor } from "./sqlProcessor.js";
import { basename } from "node:path";
import { subjectsOf } from "./validate.js";
import { outputOf, ensureOutputStream } from "./derived.js";
import type { ProcessorDefinition } from "./define.js";
import { resolveUntil, refusePromoteFrozen } from "./frozen.js";

/** The outcome of a deploy or replay. */
export interface DeployResult extends Registered {
  processor: string;
}

/** Resolves an offset to where a new version starts reading: `end` becomes the sequence after the current last one. */
async function resolveStart(nc: NatsConnection, stream: string, from: string): Promise<Pick<NewVersion, "from" | "startSeq" | "startTime">> {
  const o = parseOffset(from);
  switch (o.kind) {
    case "start":
      return { from: "start", startSeq: 1 };
    case "seq":
      return { from: formatOffset(o), startSeq: o.seq };
    case "time": {
      const startSeq = await firstSeqAtOrAfter(jetstream(nc), await jetstreamManager(nc), stream, o.time);
      return { from: formatOffset(o), startSeq, startTime: o.time };
    }
    case "end": {
      const info = await logInfo(await jetstreamManager(nc), stream);
      return { from: "end", startSeq: info.lastSeq + 1 };
    }
  }
}

/** For a pipeline stage: the upstream's live version, pinned at deploy time. */
async function resolveSource(nc: NatsConnection, stream: string, catalog: Catalog, def: ProcessorDefinition): Promise<{ processor: string; version: number } | undefined> {
  if (!def.source) return undefined;
  if (def.source === def.name) throw new InputError(`${def.name} cannot read its own output`, { hint: "set `source` to another processor" });
  const up = await catalog.get(def.source);
  if (!up || up.record.live === null) {
    throw new KappaError("SOURCE_NOT_LIVE", `${def.name} reads ${def.source}, which has no live version`, { hint: `deploy ${def.source} first and wait until it is live (\`kappa deploy ... --wait\`)` });
  }
  await ensureOutputStream(nc, outputOf(stream, def.source, up.record.live));
  return { processor: def.source, version: up.record.live };
}

/**
 * `kappa deploy`: bundles the module, stores its code by hash, and registers a new view version. Its build
 * notes schema versions the code has no upcaster for as it reads (`checkSchemas: false` turns that off):
 * the catch-up (or failure) records them, and the worker reports them while it builds.
 */
export async function deployModule(nc: NatsConnection, spec: StreamSpec, modulePath: string, opts: { from?: string; until?: string; promote?: boolean; checkSchemas?: boolean } = {}): Promise<DeployResult> {
  refusePromoteFrozen(opts);
  const bundle = await bundleProcessor(modulePath);
  const origin = basename(modulePath);
  if (bundle.kind === "sql") checkSqlProcessor(bundle.text, origin);
  const def = await loadProcessor({ hash: hashCode(bundle.text), kind: bundle.kind, text: bundle.text }, undefined, origin);
  await ensureStream(nc, spec);
  const catalog = await Catalog.open(nc, spec.stream, spec.replicas);
  const code = await CodeStore.open(nc, spec.stream, undefined, spec.replicas);
  const codeHash = await code.put(bundle.kind, bundle.text);
  const source = await resolveSource(nc, spec.stream, catalog, def);
  const input = source ? outputOf(spec.stream, source.processor, source.version).stream : spec.stream;
  const start = await resolveStart(nc, input, opts.from ?? "start");
  const until = opts.until !== undefined ? await resolveUntil(nc, input, opts.until, start.startSeq) : undefined;
  const reg = await registerVersion(catalog, def.name, {
    codeHash,
    codeKind: bundle.kind,
    origin,
    ...start,
    ...until,
    subjects: subjectsOf(def),
    promote: opts.promote,
    ...(source ? { source } : {}),
    ...(def.queries ? { queries: def.queries } : {}),
    ...(opts.checkSchemas === false ? { schemaCheck: false as const } : {}),
  }, "deploy");
  return { processor: def.name, ...reg };
}

/** `kappa replay`: a new version running the live version's code (or another version's) from an offset. */
export async function replayProcessor(nc: NatsConnection, spec: StreamSpec, processor: string, opts: { from: string; until?: string; codeOf?: number; promote?: boolean; reuse?: boolean; seed?: { version: number; checkpoint: number }; pinSource?: boolean }): Promise<DeployResult> {
  refusePromoteFrozen(opts);
  const catalog = await Catalog.open(nc, spec.stream, spec.replicas);
  const rec = await catalog.require(processor);
  const base = opts.codeOf ?? rec.live ?? Math.max(...Object.keys(rec.versions).map(Number));
  const basis = rec.versions[String(base)];
  if (!basis) throw new InputError(`${processor} has no version ${base}`, { hint: `see \`kappa status ${processor}\`` });
  const code = await CodeStore.open(nc, spec.stream, undefined, spec.replicas);
  const def = await loadProcessor(await code.get(basis.codeHash, basis.codeKind), undefined, basis.origin);
  // `pinSource` (query --as-of): read the upstream version the basis reads, whose output the offset is in, not the upstream's live one.
  const source = opts.pinSource && basis.source ? basis.source : await resolveSource(nc, spec.stream, catalog, def);
  const input = source ? outputOf(spec.stream, source.processor, source.version).stream : spec.stream;
  const start = await resolveStart(nc, input, opts.from);
  const until = opts.until !== undefined ? await resolveUntil(nc, input, opts.until, start.startSeq) : undefined;
  const reg = await registerVersion(catalog, processor, {
    codeHash: basis.codeHash,
    codeKind: basis.codeKind,
    ...(basis.origin ? { origin: basis.origin } : {}),
    ...start,
    ...until,
    subjects: basis.subjects,
    promote: opts.promote,
    replayOf: base,
    ...(opts.seed ? { seed: opts.seed } : {}),
    ...(source ? { source } : {}),
    ...(basis.queries ? { queries: basis.queries } : {}),
    ...(basis.schemaCheck === false ? { schemaCheck: false as const } : {}),
  }, "replay", { reuse: opts.reuse === true });
  return { processor, ...reg };
}
