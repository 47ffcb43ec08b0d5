import { randomUUID } from "node:crypto";
import { headers as makeHeaders, type NatsConnection } from "@nats-io/nats-core";
import { InputError, KappaError, UnavailableError, messageOf } from "../errors.js";
import type { OutgoingEvent } from "./append.js";
import { ERR_WRONG_LAST_MSG_ID, ERR_WRONG_LAST_SEQUENCE, lookupHeaders } from "./lookup.js";
import { SCHEMA_HEADER } from "./rawEvent.js";
import { replicasFor, type StreamSpec } from "./stream.js";

/** Where each event of an all-or-nothing append landed, in input order. */
export interface AtomicAppendResult {
  /** The stream sequence of every event, in input order (a duplicate gets the sequence it was first stored at). */
  seqs: number[];
  /** True where the event was already in the log (same id), so nothing was stored for it. */
  duplicate: boolean[];
  /** Events this call stored. */
  stored: number;
}

/** The most messages one atomic batch may carry (the server's default `max_msgs`). */
export const MAX_ATOMIC_BATCH = 1000;

const ERR_DUPLICATE_IN_BATCH = 10201;
const decoder = new TextDecoder();

interface Ack {
  seq?: number;
  count?: number;
  duplicate?: boolean;
  error?: { code: number; err_code?: number; description: string };
}

/** Raised inside this file when the server refused a batch because one of its ids is already stored. */
class DuplicateInBatch extends Error {}

/**
 * Appends events all-or-nothing: one JetStream atomic batch (nats-server 2.12+, stream `allow_atomic`),
 * so an outage or a crash at any instant leaves either every event of the call in the log or none.
 * Ids (`Nats-Msg-Id`) make a retry store nothing twice: the server refuses a batch that holds an id it
 * already stored, so the ids already stored are looked up without storing anything (a probe whose
 * expectation can never hold: the server answers a duplicate before it checks the expectation) and the
 * batch is sent again without them. Ids repeated inside one call are stored once.
 *
 * Written on the core request API rather than the client's `startBatch`, whose commit drops the server's
 * error code, which is what tells a duplicate from any other refusal.
 */
export async function appendAtomic(nc: NatsConnection, spec: StreamSpec, events: OutgoingEvent[], opts: { timeoutMs?: number } = {}): Promise<AtomicAppendResult> {
  if (events.length > MAX_ATOMIC_BATCH) {
    throw new InputError(`${events.length} events in one request; at most ${MAX_ATOMIC_BATCH} are stored all-or-nothing`, { hint: `split the request into parts of at most ${MAX_ATOMIC_BATCH} events`, code: "TOO_MANY_EVENTS" });
  }
  const timeoutMs = opts.timeoutMs ?? 5000;
  const seqs = new Array<number>(events.length).fill(0);
  const duplicate = new Array<boolean>(events.length).fill(false);
  // The first occurrence of each id is published; later ones point at it.
  const firstOf = new Map<string, number>();
  let pending: number[] = [];
  events.forEach((e, i) => {
    if (firstOf.has(e.id)) return;
    firstOf.set(e.id, i);
    pending.push(i);
  });
  let stored = 0;
  for (let round = 0; pending.length > 0; round++) {
    if (round >= 5) {
      throw new UnavailableError("APPEND_CONTENDED", "other writers kept storing the same ids while this request was sent; nothing more of it was stored", {
        hint: "retry the request with the same ids: what is already stored is not stored again",
      });
    }
    try {
      const batch = pending.map((i) => events[i]!);
      const first = batch.length === 1 ? await publishOne(nc, spec, batch[0]!, timeoutMs) : await publishBatch(nc, spec, batch, timeoutMs);
      for (let k = 0; k < pending.length; k++) {
        seqs[pending[k]!] = first.seq + k;
        if (first.duplicate) duplicate[pending[k]!] = true;
        else stored++;
      }
      pending = [];
    } catch (err) {
      if (!(err instanceof DuplicateInBatch)) throw err;
      const expect = lookupHeaders(await replicasFor(nc, spec.stream));
      const known = await Promise.all(pending.map((i) => probe(nc, spec, events[i]!, expect, timeoutMs)));
      const left: number[] = [];
      pending.forEach((i, k) => {
        if (known[k] === null) return void left.push(i);
        seqs[i] = known[k]!;
        duplicate[i] = true;
      });
      pending = left;
    }
  }
  events.forEach((e, i) => {
    const f = firstOf.get(e.id)!;
    if (f !== i) {
      seqs[i] = seqs[f]!;
      duplicate[i] = true;
    }
  });
  return { seqs, duplicate, stored };
}

/** One event needs no batch: a single publish is stored whole or not at all. */
async function publishOne(nc: NatsConnection, spec: StreamSpec, ev: OutgoingEvent, timeoutMs: number): Promise<{ seq: number; duplicate: boolean }> {
  const h = makeHeaders();
  h.set("Nats-Msg-Id", ev.id);
  if (ev.schemaVersion) h.set(SCHEMA_HEADER, String(ev.schemaVersion));
  const ack = await request(nc, `${spec.prefix}.${ev.type}`, ev.json, h, timeoutMs);
  if (ack.error) throw refused(ack);
  return { seq: ack.seq ?? 0, duplicate: ack.duplicate === true };
}

/** Publishes one atomic batch; resolves with the first event's sequence (the batch's are consecutive). */
async function publishBatch(nc: NatsConnection, spec: StreamSpec, batch: OutgoingEvent[], timeoutMs: number): Promise<{ seq: number; duplicate: boolean }> {
  const id = randomUUID();
  const n = batch.length;
  const headersFor = (k: number) => {
    const h = makeHeaders();
    h.set("Nats-Batch-Id", id);
    h.set("Nats-Batch-Sequence", String(k + 1));
    h.set("Nats-Msg-Id", batch[k]!.id);
    if (batch[k]!.schemaVersion) h.set(SCHEMA_HEADER, String(batch[k]!.schemaVersion));
    if (k === n - 1) h.set("Nats-Batch-Commit", "1");
    return h;
  };
  // The first message is a request, so a stream that refuses batches says so before the rest is sent.
  const started = await request(nc, `${spec.prefix}.${batch[0]!.type}`, batch[0]!.json, headersFor(0), timeoutMs);
  if (started.error) throw refused(started);
  for (let k = 1; k < n - 1; k++) nc.publish(`${spec.prefix}.${batch[k]!.type}`, batch[k]!.json, { headers: headersFor(k) });
  const ack = await request(nc, `${spec.prefix}.${batch[n - 1]!.type}`, batch[n - 1]!.json, headersFor(n - 1), timeoutMs);
  if (ack.error) throw refused(ack);
  if (ack.count !== n || ack.seq === undefined) throw new KappaError("BAD_ACK", `the stream acknowledged ${ack.count ?? "?"} of ${n} events of a batch`, { hint: "retry the request with the same ids" });
  return { seq: ack.seq - n + 1, duplicate: false };
}

/** The sequence an id is stored at, or null when it is not stored; stores nothing either way. */
async function probe(nc: NatsConnection, spec: StreamSpec, ev: OutgoingEvent, expect: Record<string, string>, timeoutMs: number): Promise<number | null> {
  const h = makeHeaders();
  h.set("Nats-Msg-Id", ev.id);
  // An expectation no stream meets (lookupHeaders): the server refuses the publish, unless the id is a duplicate.
  for (const [k, v] of Object.entries(expect)) h.set(k, v);
  const ack = await request(nc, `${spec.prefix}.${ev.type}`, ev.json, h, timeoutMs);
  if (ack.duplicate && ack.seq) return ack.seq;
  if (ack.error?.err_code === ERR_WRONG_LAST_MSG_ID || ack.error?.err_code === ERR_WRONG_LAST_SEQUENCE) return null;
  if (ack.error) throw refused(ack);
  // Stored after all: only a server that checks expectations after storing could do this.
  throw new KappaError("PROBE_STORED", `looking up id ${ev.id} stored it at seq ${ack.seq}`, { hint: "this nats-server does not check expectations before storing; report it" });
}

async function request(nc: NatsConnection, subject: string, json: string, h: ReturnType<typeof makeHeaders>, timeoutMs: number): Promise<Ack> {
  let m;
  try {
    m = await nc.request(subject, json, { headers: h, timeout: timeoutMs });
  } catch (err) {
    if (/no responders/i.test(messageOf(err)) || /503/.test(messageOf(err))) {
      throw new UnavailableError("NO_STREAM", `no stream stores ${subject}`, { hint: "the stream is missing or NATS is restarting; retry in a moment with the same ids", cause: err });
    }
    throw new UnavailableError("NATS_UNAVAILABLE", `NATS did not acknowledge the events within ${timeoutMs} ms: ${messageOf(err)}`, {
      hint: "retry with the same ids (or the same Idempotency-Key): the request is stored in whole or not at all, and a retry stores nothing twice",
      cause: err,
    });
  }
  if (m.headers?.code === 503) throw new UnavailableError("NO_STREAM", `no stream stores ${subject}`, { hint: "the stream is missing or NATS is restarting; retry in a moment" });
  if (m.data.length === 0) return {};
  try {
    return JSON.parse(decoder.decode(m.data)) as Ack;
  } catch (err) {
    throw new KappaError("BAD_ACK", `unreadable ack for ${subject}`, { cause: err });
  }
}

function refused(ack: Ack): Error {
  const e = ack.error!;
  if (e.err_code === ERR_DUPLICATE_IN_BATCH) return new DuplicateInBatch(e.description);
  if (/atomic publish is (disabled|not enabled)/i.test(e.description)) {
    return new KappaError("ATOMIC_DISABLED", `the stream does not accept atomic batches: ${e.description}`, { hint: "restart `kappa serve --allow-append`, which enables them on the stream (nats-server 2.12 or later)" });
  }
  // Before the size check below: "atomic publish too many inflight" is the stream's backpressure (50 open
  // batches per stream by default), not the request's fault, and a retry succeeds.
  if (e.code === 503 || /inflight|in flight/i.test(e.description)) {
    return new UnavailableError("NATS_BUSY", `the stream is busy: ${e.description}`, { hint: "retry in a moment with the same ids" });
  }
  if (/too large|too many|exceeds/i.test(e.description)) {
    return new InputError(`the stream refused the request: ${e.description} (${e.err_code ?? e.code})`, { hint: "send fewer or smaller events per request", code: "BATCH_REFUSED" });
  }
  return new KappaError("PUBLISH_REJECTED", `the stream refused the events: ${e.description} (${e.err_code ?? e.code})`, { hint: "check the events' size and the stream's limits (`kappa log info`)" });
}
