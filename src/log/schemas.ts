import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { wrapJsError } from "./stream.js";
import { SCHEMA_HEADER } from "./rawEvent.js";

/** How many events of one type carry one schema version, and where the first and last of them are. */
export interface SchemaCount {
  type: string;
  /** The schema version (1 when the header is absent; 0 when the header is not a positive integer). */
  version: number;
  count: number;
  firstSeq: number;
  lastSeq: number;
}

/** One type and schema version with an example of its data (the first event of that shape). */
export interface SchemaShape extends SchemaCount {
  example: unknown;
}

function versionOf(text: string | undefined): number {
  if (!text) return 1;
  const n = /^\d+$/.test(text) ? Number(text) : 0;
  return Number.isSafeInteger(n) && n >= 1 ? n : 0;
}

/**
 * Counts events per type and schema version from `fromSeq` to the log's head as it is now. Reads headers
 * only (a headers-only ordered consumer), so the scan moves no event data; it stops at the head it saw
 * first, so events arriving meanwhile cannot keep it going.
 */
export async function schemaCensus(js: JetStreamClient, jsm: JetStreamManager, spec: { stream: string; prefix: string }, opts: { fromSeq?: number; toSeq?: number; types?: (type: string) => boolean } = {}): Promise<SchemaCount[]> {
  const counts = new Map<string, SchemaCount>();
  try {
    const state = (await jsm.streams.info(spec.stream)).state;
    const from = Math.max(opts.fromSeq ?? 1, state.first_seq);
    const last = Math.min(state.last_seq, opts.toSeq ?? Infinity);
    if (state.messages === 0 || from > last) return [];
    const consumer = await js.consumers.get(spec.stream, { headers_only: true, ...(from > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from } : { deliver_policy: DeliverPolicy.All }) });
    const messages = await consumer.consume({ max_messages: 10_000 });
    const cut = spec.prefix.length + 1;
    try {
      for await (const m of messages as AsyncIterable<JsMsg>) {
        if (m.seq > last) break;
        const type = m.subject.slice(cut);
        if (!opts.types || opts.types(type)) {
          const version = versionOf(m.headers?.get(SCHEMA_HEADER));
          const key = `${type}\u0000${version}`;
          const c = counts.get(key);
          if (c) {
            c.count++;
            c.lastSeq = m.seq;
          } else counts.set(key, { type, version, count: 1, firstSeq: m.seq, lastSeq: m.seq });
        }
        if (m.seq >= last || m.info.pending === 0) break;
      }
    } finally {
      messages.stop();
    }
  } catch (err) {
    throw wrapJsError(err, spec.stream);
  }
  return [...counts.values()].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : a.version - b.version));
}

/** `kappa log types`: every event type with its count per schema version and an example of each shape. */
export async function logTypes(js: JetStreamClient, jsm: JetStreamManager, spec: { stream: string; prefix: string }): Promise<SchemaShape[]> {
  const out: SchemaShape[] = [];
  for (const c of await schemaCensus(js, jsm, spec)) {
    let example: unknown = null;
    try {
      example = (await jsm.streams.getMessage(spec.stream, { seq: c.firstSeq }))?.json() ?? null;
    } catch {
      example = "(not JSON)";
    }
    out.push({ ...c, example });
  }
  return out;
}
