import type { NatsConnection } from "@nats-io/nats-core";
import { appendAtomic, MAX_ATOMIC_BATCH } from "./atomicAppend.js";
import type { AppendSummary, OutgoingEvent } from "./append.js";
import type { StreamSpec } from "./stream.js";

/**
 * Appends many events in input order with JetStream atomic batches (nats-server 2.12+, stream
 * `allow_atomic`): each batch of up to 1,000 is stored whole or not at all, and the next batch goes out
 * only after this one's commit was acknowledged. So after a NATS drop the stream holds whole batches,
 * a prefix of the input — never a later line without an earlier one — and re-running the same input
 * with the same ids stores the rest once, in order (ids already stored are looked up, not stored again).
 */
export async function appendInOrder(nc: NatsConnection, spec: StreamSpec, events: Iterable<OutgoingEvent> | AsyncIterable<OutgoingEvent>, opts: { timeoutMs?: number; onAck?: (n: number) => void } = {}): Promise<AppendSummary> {
  const summary: AppendSummary = { count: 0, stored: 0, duplicates: 0, firstSeq: null, lastSeq: null, seqs: [] };
  let batch: OutgoingEvent[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const r = await appendAtomic(nc, spec, batch, { timeoutMs: opts.timeoutMs ?? 10_000 });
    if (summary.seqs) {
      if (summary.count + batch.length <= 10_000) summary.seqs.push(...r.seqs);
      else summary.seqs = undefined;
    }
    summary.count += batch.length;
    summary.stored += r.stored;
    summary.duplicates += batch.length - r.stored;
    for (const seq of r.seqs) {
      if (summary.firstSeq === null || seq < summary.firstSeq) summary.firstSeq = seq;
      if (summary.lastSeq === null || seq > summary.lastSeq) summary.lastSeq = seq;
    }
    opts.onAck?.(summary.count);
    batch = [];
  };
  for await (const ev of events) {
    batch.push(ev);
    if (batch.length >= MAX_ATOMIC_BATCH) await flush();
  }
  await flush();
  return summary;
}
