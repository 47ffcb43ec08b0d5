import type { SchemaNote } from "../views/catalogTypes.js";

/** A schema version of a handled type that the log holds and the processor has no upcaster for, with what to say about it. */
export interface SchemaWarning {
  type: string;
  version: number;
  count: number;
  firstSeq: number;
  /** The newest version the processor declares for the type (its handlers' shape). */
  newest: number;
  message: string;
}

/**
 * The words for a note. "log" is the warning (with the count once the build has read everything, else
 * where the first one is); "event" is added to a poison event's failure when its version is the cause.
 */
export function schemaNoteText(processor: string, n: Pick<SchemaNote, "type" | "version" | "newest"> & Partial<Pick<SchemaNote, "count" | "firstSeq">>, form: "log" | "event", counted = true): string {
  const what = n.version === 0 ? "an unreadable schema version header" : `schema version ${n.version} of ${n.type}`;
  const steps = Array.from({ length: Math.max(1, n.version - 1) }, (_, i) => `v${i + 1}ToV${i + 2}`).join(", ");
  const fix = `declare upcasters: { "${n.type}": [${steps}] }`;
  if (form === "event") return `the event has ${what}, which ${processor} has no upcaster for (newest it knows: v${n.newest}); ${fix}`;
  const where = counted && n.count !== undefined ? `${n.count} event${n.count === 1 ? "" : "s"}, first at seq ${n.firstSeq}` : `first at seq ${n.firstSeq}`;
  return `the log holds ${what} (${where}) and ${processor} has no upcaster for it (newest it knows: v${n.newest}) — its handlers get that shape unchanged; ${fix}`;
}

/** A note as deploy reports it (`--json` shows these fields). */
export function schemaWarning(processor: string, n: SchemaNote, counted = true): SchemaWarning {
  return { type: n.type, version: n.version, count: n.count, firstSeq: n.firstSeq, newest: n.newest, message: schemaNoteText(processor, n, "log", counted) };
}
