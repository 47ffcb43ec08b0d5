import { startFastIngest, type FastIngest } from "@nats-io/jetstream/internal";
import type { JetStreamManager } from "@nats-io/jetstream";
import { headers as makeHeaders, type MsgHdrs, type NatsConnection } from "@nats-io/nats-core";
import { KappaError, UnavailableError, messageOf } from "../errors.js";
import type { AppendSummary, OutgoingEvent } from "./append.js";
import { lookupHeaders } from "./lookup.js";
import { PipelinedPublisher } from "./publisher.js";
import { SCHEMA_HEADER } from "./rawEvent.js";
import { versionAtLeast } from "./serverVersion.js";
import type { StreamSpec } from "./stream.js";

/** The first nats-server with fast-ingest batches (ADR-50, stream `allow_batched`). */
export const FAST_INGEST_SERVER = "2.14.0";

/** Acks the client asks for: one flow ack per this many messages (the server caps it at 500 / open fast batches). */
const ACK_INTERVAL = 500;
/** Events published between two looks at the flow window (it may run over by at most this many). */
const SEND_CHUNK = 256;
/** How many lines are looked up at once when finding the part of a file that is already stored. */
const PROBE_CHUNK = 1000;

/**
 * The stream's replicas when it takes fast-ingest batches, switching them on (nats-server 2.14+) for a stream
 * created without them; null on older servers or when the switch is refused. Switching them on edits nothing stored.
 */
export async function fastIngestReplicas(nc: NatsConnection, jsm: JetStreamManager, stream: string): Promise<number | null> {
  if (!versionAtLeast(nc.info?.version ?? "0.0.0", FAST_INGEST_SERVER)) return null;
  try {
    const info = await jsm.streams.info(stream);
    if (!info.config.allow_batched) await jsm.streams.update(stream, { ...info.config, allow_batched: true });
    return info.config.num_replicas ?? 1;
  } catch {
    return null;
  }
}

/**
 * Appends checked events in input order with one JetStream fast-ingest batch in gap-fail mode (ADR-50,
 * nats-server 2.14+): the server persists the batch's messages in the order they arrive, pacing the client
 * with flow acks, and ends the batch at the first message it cannot store, so the stream always holds a
 * PREFIX of the input — after a NATS drop too — interleaved at most with other writers' events.
 *
 * A re-run of the same input first looks up, without storing anything, how many leading events are already
 * stored (their ids answer "duplicate"), then sends the rest: the first one as a single publish, whose ack
 * gives the first new sequence, and the others as the batch, in which the server skips any id it already
 * has. `duplicates` counts the leading events found stored; one stored out of that order would be skipped
 * by the server but counted as stored.
 */
export async function appendFast(nc: NatsConnection, spec: StreamSpec, events: readonly OutgoingEvent[], opts: { timeoutMs?: number; replicas?: number } = {}): Promise<AppendSummary> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const summary: AppendSummary = { count: events.length, stored: 0, duplicates: 0, firstSeq: null, lastSeq: null };
  const seen = (seq: number) => {
    if (summary.firstSeq === null || seq < summary.firstSeq) summary.firstSeq = seq;
    if (summary.lastSeq === null || seq > summary.lastSeq) summary.lastSeq = seq;
  };
  const skipStored = (start: number) =>
    storedPrefix(nc, spec, events, start, timeoutMs, opts.replicas ?? 1, (seq) => {
      summary.duplicates++;
      seen(seq);
    });
  let from = await skipStored(0);
  const subject = (ev: OutgoingEvent) => `${spec.prefix}.${ev.type}`;
  // One publish alone: its ack says where the new events start (a batch's acks carry no stream sequence).
  while (from < events.length) {
    const ev = events[from]!;
    const ack = await publishOne(nc, subject(ev), bytes(ev.json), eventHeaders(ev), timeoutMs);
    seen(ack.seq);
    if (!ack.duplicate) {
      summary.stored++;
      from++;
      break;
    }
    // Stored meanwhile, by another run of the same file: skip what it has stored since.
    summary.duplicates++;
    from = await skipStored(from + 1);
  }
  while (from < events.length) {
    const first = events[from]!;
    if (from === events.length - 1) {
      // A batch of one would commit with its first message; a single publish is the same, simpler.
      const ack = await publishOne(nc, subject(first), bytes(first.json), eventHeaders(first), timeoutMs);
      seen(ack.seq);
      if (ack.duplicate) summary.duplicates++;
      else summary.stored++;
      break;
    }
    let fi: FastIngest;
    try {
      fi = await startFastIngest(nc, subject(first), bytes(first.json), { headers: eventHeaders(first), allowGaps: false, ackInterval: ACK_INTERVAL, maxOutstandingAcks: 2 }, timeoutMs);
    } catch (err) {
      throw unavailable(err, events.length - from);
    }
    const sent = await sendRest(fi, events, from, subject);
    let ack: { seq: number; count?: number; duplicate?: boolean };
    try {
      ack = sent === events.length - from ? await fi.last(subject(events[events.length - 1]!), bytes(events[events.length - 1]!.json), { headers: eventHeaders(events[events.length - 1]!), timeout: timeoutMs }) : await fi.done();
    } catch (err) {
      throw unavailable(err, events.length - from);
    }
    const count = ack.count ?? 1;
    if (sent === 1 && count === 1 && ack.duplicate) {
      // The batch's first event was stored meanwhile (another run of the same file): the server ends such a
      // batch at once. Skip what the other run has stored since, in bulk, not one batch start per event.
      summary.duplicates++;
      seen(ack.seq);
      from = await skipStored(from + 1);
      continue;
    }
    if (count !== events.length - from) {
      throw new KappaError("BATCH_ENDED", `the stream ended the batch after ${count} of ${events.length - from} events`, {
        hint: "the stream holds the file's events up to that point, in order; re-run the same command to store the rest once",
      });
    }
    summary.stored += count;
    seen(ack.seq);
    from = events.length;
  }
  return summary;
}

/** Sends events[from+1 ..] but the last into the batch (the last one commits it); returns how many the batch took, the first included. */
async function sendRest(fi: FastIngest, events: readonly OutgoingEvent[], from: number, subject: (ev: OutgoingEvent) => string): Promise<number> {
  const end = events.length - 1;
  let i = from + 1;
  try {
    while (i < end) {
      // A chunk goes out without yielding: the client writes to the socket once per turn, not once per event.
      const stop = Math.min(end, i + SEND_CHUNK);
      let last: Promise<unknown> | undefined;
      for (; i < stop; i++) {
        const ev = events[i]!;
        // Resolves at once while the flow window has room, else when the server's next flow ack arrives.
        last = fi.add(subject(ev), bytes(ev.json), { headers: eventHeaders(ev) });
        last.catch(ignore);
      }
      await last;
    }
  } catch {
    // The batch ended early (refused, duplicate first event, NATS gone): done() says how.
    return i - from;
  }
  return events.length - from;
}

/**
 * Where the events from `start` on stop being stored already, looked up chunk by chunk without storing
 * anything (lookupHeaders); `found` gets the sequence of each. A lookup that misses a stored id costs only
 * time: the single publish after it answers "duplicate".
 */
async function storedPrefix(nc: NatsConnection, spec: StreamSpec, events: readonly OutgoingEvent[], start: number, timeoutMs: number, replicas: number, found: (seq: number) => void): Promise<number> {
  const never = lookupHeaders(replicas);
  const pub = new PipelinedPublisher(nc, { window: PROBE_CHUNK, timeoutMs });
  try {
    for (let at = start; at < events.length; at += PROBE_CHUNK) {
      const chunk = events.slice(at, at + PROBE_CHUNK);
      const acks = chunk.map((ev) => pub.publishNow(`${spec.prefix}.${ev.type}`, bytes(ev.json), ev.id, never));
      const results = await Promise.allSettled(acks);
      for (let k = 0; k < results.length; k++) {
        const r = results[k]!;
        if (r.status === "rejected") {
          if (r.reason instanceof KappaError && r.reason.code === "PUBLISH_REJECTED") return at + k;
          throw r.reason;
        }
        if (!r.value.duplicate) throw new KappaError("PROBE_STORED", `looking up id ${chunk[k]!.id} stored it at seq ${r.value.seq}`, { hint: "this nats-server does not check expectations before storing; report it" });
        found(r.value.seq);
      }
    }
    return events.length;
  } finally {
    pub.close();
  }
}

async function publishOne(nc: NatsConnection, subject: string, data: Uint8Array, h: MsgHdrs, timeoutMs: number): Promise<{ seq: number; duplicate: boolean }> {
  let m;
  try {
    m = await nc.request(subject, data, { headers: h, timeout: timeoutMs });
  } catch (err) {
    throw unavailable(err, 0);
  }
  if (m.headers?.code === 503) throw new UnavailableError("NO_STREAM", `no stream stores ${subject}`, { hint: "the stream is missing or NATS is restarting; re-run in a moment" });
  const ack = JSON.parse(new TextDecoder().decode(m.data)) as { seq?: number; duplicate?: boolean; error?: { code: number; err_code?: number; description: string } };
  if (ack.error || ack.seq === undefined) {
    throw new KappaError("PUBLISH_REJECTED", `the stream refused ${subject}: ${ack.error?.description ?? "no sequence in its ack"} (${ack.error?.err_code ?? ack.error?.code ?? "?"})`, {
      hint: "check the events' size and the stream's limits (`kappa log info`); what is stored is a prefix of the file — re-run the same command",
    });
  }
  return { seq: ack.seq, duplicate: ack.duplicate === true };
}

/** An event's JSON as bytes (Buffer.from takes small strings from a pool, twice as fast as TextEncoder). */
function bytes(json: string): Uint8Array {
  return Buffer.from(json);
}

/**
 * An event's headers as the client sends them, built as one string: the client only calls `encode()` on
 * them, and its own header object validates, stores and re-encodes every value, a large share of the time
 * the client spends per event. Same bytes as the client's (values trimmed); checkEvent refuses ids with
 * line breaks, and one that got here anyway takes the client's way, which refuses it.
 */
function eventHeaders(ev: OutgoingEvent): MsgHdrs {
  if (/[\r\n]/.test(ev.id)) {
    const h = makeHeaders();
    h.set("Nats-Msg-Id", ev.id);
    return h;
  }
  return new WireHeaders(Buffer.from(`NATS/1.0\r\nNats-Msg-Id: ${ev.id.trim()}\r\n${ev.schemaVersion ? `${SCHEMA_HEADER}: ${ev.schemaVersion}\r\n` : ""}\r\n`)) as unknown as MsgHdrs;
}

/** Header bytes built once; a class, not a closure per event. */
class WireHeaders {
  constructor(readonly wire: Uint8Array) {}
  encode(): Uint8Array {
    return this.wire;
  }
}

/** Failures reach the caller through the chunk's last add; the others only need a handler. */
function ignore(): void {}

function unavailable(err: unknown, left: number): Error {
  if (err instanceof KappaError) return err;
  return new UnavailableError("APPEND_STOPPED", `JetStream stopped taking the file's events${left ? ` with ${left.toLocaleString("en-US")} still to send` : ""}: ${messageOf(err)}`, {
    hint: "NATS may be down; re-run the same command: lines already stored are not stored again, the rest is stored once, in order",
    cause: err,
  });
}
