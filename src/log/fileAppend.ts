import { headers as makeHeaders, nuid, type NatsConnection } from "@nats-io/nats-core";
import { KappaError, UnavailableError, messageOf } from "../errors.js";
import { appendAtomic, MAX_ATOMIC_BATCH } from "./atomicAppend.js";
import type { AppendSummary, OutgoingEvent } from "./append.js";
import { lookupHeaders } from "./lookup.js";
import { SCHEMA_HEADER } from "./rawEvent.js";
import { PipelinedPublisher } from "./publisher.js";
import { replicasFor, type StreamSpec } from "./stream.js";

/** The server refuses a whole atomic batch that holds an id it already stored. */
const ERR_DUPLICATE_IN_BATCH = 10201;

interface CommitAck {
  seq?: number;
  count?: number;
  error?: { code: number; err_code?: number; description: string };
}

/**
 * Appends many events in input order with JetStream atomic batches (nats-server 2.12+, stream
 * `allow_atomic`): each batch of up to 1,000 is stored whole or not at all, and the next batch goes out
 * only after this one's commit was acknowledged. So after a NATS drop the stream holds whole batches,
 * a prefix of the input — never a later line without an earlier one — and re-running the same input
 * with the same ids stores the rest once, in order: a batch the server refuses for an id it already
 * has goes through appendAtomic, which looks the stored ids up and sends the rest as one batch.
 */
export async function appendInOrder(nc: NatsConnection, spec: StreamSpec, events: Iterable<OutgoingEvent> | AsyncIterable<OutgoingEvent>, opts: { timeoutMs?: number; onAck?: (n: number) => void } = {}): Promise<AppendSummary> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const summary: AppendSummary = { count: 0, stored: 0, duplicates: 0, firstSeq: null, lastSeq: null, seqs: [] };
  const add = (n: number, seqs: number[], stored: number) => {
    if (summary.seqs) {
      if (summary.count + n <= 10_000) summary.seqs.push(...seqs);
      else summary.seqs = undefined;
    }
    summary.count += n;
    summary.stored += stored;
    summary.duplicates += n - stored;
    for (const seq of seqs) {
      if (summary.firstSeq === null || seq < summary.firstSeq) summary.firstSeq = seq;
      if (summary.lastSeq === null || seq > summary.lastSeq) summary.lastSeq = seq;
    }
  };
  let batch: OutgoingEvent[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const n = batch.length;
    const ack = await commitBatch(nc, spec, batch, timeoutMs);
    if (ack.error?.err_code === ERR_DUPLICATE_IN_BATCH) {
      // A re-run: usually the whole batch is stored already. Else appendAtomic stores the rest as one batch.
      const known = await storedSeqs(nc, spec, batch, timeoutMs);
      if (known) add(n, known, 0);
      else {
        const r = await appendAtomic(nc, spec, batch, { timeoutMs });
        add(n, r.seqs, r.stored);
      }
    } else if (ack.error) {
      throw new KappaError("PUBLISH_REJECTED", `the stream refused a batch of ${n} events: ${ack.error.description} (${ack.error.err_code ?? ack.error.code})`, {
        hint: "check the events' size and the stream's limits (`kappa log info`); nothing of this batch was stored — re-run the same command",
      });
    } else {
      if (ack.count !== n || ack.seq === undefined) throw new KappaError("BAD_ACK", `the stream acknowledged ${ack.count ?? "?"} of ${n} events of a batch`, { hint: "re-run the same command" });
      const first = ack.seq - n + 1;
      add(n, batch.map((_, i) => first + i), n);
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

/**
 * Where every event of a batch is already stored, or null when one is not (or cannot be told): each is
 * published, pipelined, with an expectation no stream meets (lookupHeaders), which the server answers with
 * "duplicate" for a stored id before it checks the expectation, and refuses otherwise — nothing is stored.
 */
async function storedSeqs(nc: NatsConnection, spec: StreamSpec, batch: OutgoingEvent[], timeoutMs: number): Promise<number[] | null> {
  const pub = new PipelinedPublisher(nc, { window: batch.length, timeoutMs });
  try {
    const enc = new TextEncoder();
    const never = lookupHeaders(await replicasFor(nc, spec.stream));
    const acks = batch.map((ev) => pub.publishNow(`${spec.prefix}.${ev.type}`, enc.encode(ev.json), ev.id, never));
    const results = await Promise.allSettled(acks);
    const seqs: number[] = [];
    for (const r of results) {
      if (r.status !== "fulfilled" || !r.value.duplicate) return null;
      seqs.push(r.value.seq);
    }
    return seqs;
  } finally {
    pub.close();
  }
}

/** Sends one atomic batch without waiting on anything but its commit (a refusal comes back on the commit). */
async function commitBatch(nc: NatsConnection, spec: StreamSpec, batch: OutgoingEvent[], timeoutMs: number): Promise<CommitAck> {
  const id = nuid.next();
  const last = batch.length - 1;
  for (let i = 0; i <= last; i++) {
    const ev = batch[i]!;
    const h = makeHeaders();
    h.set("Nats-Batch-Id", id);
    h.set("Nats-Batch-Sequence", String(i + 1));
    h.set("Nats-Msg-Id", ev.id);
    if (ev.schemaVersion) h.set(SCHEMA_HEADER, String(ev.schemaVersion));
    if (i < last) {
      nc.publish(`${spec.prefix}.${ev.type}`, ev.json, { headers: h });
      continue;
    }
    h.set("Nats-Batch-Commit", "1");
    let m;
    try {
      m = await nc.request(`${spec.prefix}.${ev.type}`, ev.json, { headers: h, timeout: timeoutMs });
    } catch (err) {
      throw new UnavailableError("PUBLISH_TIMEOUT", `no commit from JetStream for a batch of ${batch.length} events: ${messageOf(err)}`, {
        hint: "NATS may be down; re-run the same command: lines already stored are not stored again, the rest is stored once, in order",
        cause: err,
      });
    }
    if (m.headers?.code === 503) throw new UnavailableError("NO_STREAM", `no stream stores ${spec.prefix}.${ev.type}`, { hint: "the stream is missing or NATS is restarting; re-run in a moment" });
    return JSON.parse(new TextDecoder().decode(m.data)) as CommitAck;
  }
  return {};
}
