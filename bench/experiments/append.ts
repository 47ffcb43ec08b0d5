/**
 * Experiment (evidence for src/log/append.ts): why appendEvents is slower than a raw pipelined loop.
 * nats-core flushes its outbound buffer on a queueMicrotask scheduled by the first publish after a flush;
 * appendEvents' `for await` yields to microtasks after every event, so each publish becomes its own
 * socket write. Publishing a chunk of events synchronously lets one write carry the whole chunk.
 * Usage: tsx bench/experiments/append.ts [events]
 */
import { appendEvents, ensureStream, PipelinedPublisher, type OutgoingEvent, type StreamSpec } from "../../src/log/index.js";
import { createInbox, headers, type NatsConnection } from "@nats-io/nats-core";
import { SPEC, corpusFile, loadCorpus, startServer, connect, removeScratch } from "../lib/env.js";
import { rawPublish } from "../lib/rawPublish.js";
import { withScope } from "../lib/scope.js";
import { CpuMeter, perEvent } from "../lib/cpu.js";
import { fmt, rate } from "../lib/stats.js";

/** appendEvents with one change: events are taken in chunks and each chunk is published without yielding. */
async function appendChunked(nc: NatsConnection, spec: StreamSpec, events: Iterable<OutgoingEvent> | AsyncIterable<OutgoingEvent>, window = 10_000, chunk = 1000): Promise<number> {
  const pub = new PipelinedPublisher(nc, { window });
  const enc = new TextEncoder();
  let stored = 0;
  let failure: Error | undefined;
  const batch: OutgoingEvent[] = [];
  const flush = async () => {
    if (pub.inFlight >= window) await pub.waitForSpace(); // in flight stays ≤ window + chunk
    for (const ev of batch) pub.publishNow(`${spec.prefix}.${ev.type}`, enc.encode(ev.json), ev.id).then(() => void stored++, (e: Error) => (failure ??= e));
    batch.length = 0;
  };
  try {
    for await (const ev of events) {
      batch.push(ev);
      if (batch.length >= chunk) await flush();
      if (failure) break;
    }
    if (batch.length) await flush();
    await pub.drain();
  } finally {
    pub.close();
  }
  if (failure) throw failure;
  return stored;
}

/**
 * A leaner publisher for the same job: acks matched by token to a ring of send times, one callback for
 * every result instead of a Promise, a Map entry and a closure per message, one shared TextDecoder.
 */
async function appendLean(nc: NatsConnection, spec: StreamSpec, events: Iterable<OutgoingEvent> | AsyncIterable<OutgoingEvent>, window = 10_000, chunk = 1000): Promise<number> {
  const inbox = createInbox() + ".";
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const sentAt = new Float64Array(window + chunk); // by token % size: a timeout sweep would read these
  let next = 0;
  let inflight = 0;
  let stored = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const sub = nc.subscribe(inbox + "*", {
    callback: (err, m) => {
      inflight--;
      if (err) failure ??= err;
      else {
        const ack = JSON.parse(dec.decode(m.data)) as { seq?: number; error?: { description: string } };
        if (ack.error) failure ??= new Error(ack.error.description);
        else stored++;
      }
      if (wake && inflight < window) {
        const w = wake;
        wake = undefined;
        w();
      }
    },
  });
  const batch: OutgoingEvent[] = [];
  const flush = async () => {
    while (inflight >= window && !failure) await new Promise<void>((r) => (wake = r));
    for (const ev of batch) {
      const token = next++;
      sentAt[token % sentAt.length] = performance.now();
      const h = headers();
      h.set("Nats-Msg-Id", ev.id);
      nc.publish(`${spec.prefix}.${ev.type}`, enc.encode(ev.json), { reply: inbox + token, headers: h });
      inflight++;
    }
    batch.length = 0;
  };
  try {
    for await (const ev of events) {
      batch.push(ev);
      if (batch.length >= chunk) await flush();
      if (failure) break;
    }
    if (batch.length) await flush();
    while (inflight > 0 && !failure) await new Promise<void>((r) => (wake = r));
  } finally {
    sub.unsubscribe();
  }
  if (failure) throw failure;
  return stored;
}

async function* asAsync(events: OutgoingEvent[]): AsyncGenerator<OutgoingEvent> {
  for (const e of events) yield e;
}

const n = Number(process.argv[2] ?? 1_000_000);
const events = loadCorpus(await corpusFile(n));
const variants: Record<string, (nc: NatsConnection) => Promise<unknown>> = {
  "raw loop": (nc) => rawPublish(nc, SPEC.prefix, events),
  "appendEvents (as is)": (nc) => appendEvents(nc, SPEC, events),
  "chunked, sync source": (nc) => appendChunked(nc, SPEC, events),
  "chunked, async source (as the CLI feeds it)": (nc) => appendChunked(nc, SPEC, asAsync(events)),
  "chunked + lean publisher (callback, no Promise)": (nc) => appendLean(nc, SPEC, asAsync(events)),
};
try {
  for (let round = 0; round < 2; round++) {
    for (const [name, run] of Object.entries(variants)) {
      await withScope(async (scope) => {
        const server = await startServer(scope);
        const nc = await connect(scope, server.url);
        await ensureStream(nc, SPEC);
        const meter = new CpuMeter({ client: process.pid, server: server.pid });
        const t0 = performance.now();
        await run(nc);
        const ms = performance.now() - t0;
        const cpu = perEvent(meter.stop(), n);
        console.log(`${name.padEnd(44)} ${fmt(rate(n, ms)).padStart(9)}/s  CPU µs/event client ${cpu.client} server ${cpu.server}`);
      });
    }
  }
} finally {
  removeScratch();
}
