import type { NatsConnection } from "@nats-io/nats-core";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { schemaCensus, typeMatcher, typeMatches, type StreamSpec } from "../log/index.js";
import type { ProcessorDefinition } from "./define.js";
import { newestSchemaVersion } from "./upcast.js";

/** A schema version of a handled type that the log holds and the processor has no upcaster for. */
export interface SchemaWarning {
  type: string;
  version: number;
  count: number;
  firstSeq: number;
  /** The newest version the processor declares for the type (its handlers' shape). */
  newest: number;
  message: string;
}

/** Whether the processor handles a type: its subjects take it, and with `on`, some handler pattern matches it. */
function handles(def: ProcessorDefinition): (type: string) => boolean {
  const wanted = typeMatcher(def.subjects);
  const patterns = def.apply ? null : Object.keys(def.on ?? {});
  return (type) => wanted(type) && (patterns === null || patterns.some((p) => typeMatches(p, type)));
}

/**
 * Scans the part of the log a new version will read (a frozen one: up to its last sequence) and names every schema version of a handled type
 * newer than the processor's upcasters reach: its handlers would get that shape unchanged.
 */
export async function schemaWarnings(nc: NatsConnection, spec: StreamSpec, def: ProcessorDefinition, fromSeq = 1, toSeq?: number): Promise<SchemaWarning[]> {
  const census = await schemaCensus(jetstream(nc), await jetstreamManager(nc), spec, { fromSeq, ...(toSeq !== undefined ? { toSeq } : {}), types: handles(def) });
  const out: SchemaWarning[] = [];
  for (const c of census) {
    const newest = newestSchemaVersion(def, c.type);
    if (c.version <= newest && c.version >= 1) continue;
    const what = c.version === 0 ? "an unreadable schema version header" : `schema version ${c.version} of ${c.type}`;
    const steps = Array.from({ length: Math.max(1, c.version - 1) }, (_, i) => `v${i + 1}ToV${i + 2}`).join(", ");
    out.push({
      type: c.type,
      version: c.version,
      count: c.count,
      firstSeq: c.firstSeq,
      newest,
      message: `the log holds ${what} (${c.count} event${c.count === 1 ? "" : "s"}, first at seq ${c.firstSeq}) and ${def.name} has no upcaster for it (newest it knows: v${newest}) — its handlers get that shape unchanged; declare upcasters: { "${c.type}": [${steps}] }`,
    });
  }
  return out;
}
