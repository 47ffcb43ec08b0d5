/**
 * 1. Raw read: an ordered consumer on the whole stream (as Kappa's reader: no server-side filter), `consume({ callback, max_messages: 10000 })`, JSON.parse of every event:
 * the ceiling for replay. Then, on the same server, diagnostics that split Kappa's reader cost:
 * receive only; the per-message work LogSubscription does; LogSubscription itself.
 */
import { jetstream, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import { LogSubscription, TIME_HEADER, type RawEvent } from "../../src/log/index.js";
import { SPEC, startServer, connect, fill } from "../lib/env.js";
import { withScope } from "../lib/scope.js";
import { Progress } from "../lib/progress.js";
import { rate } from "../lib/stats.js";
import { CpuMeter, perEvent } from "../lib/cpu.js";

export interface ReadResult {
  events: number;
  /** events/s: ordered consumer + JSON.parse (the ceiling), best of two runs. */
  rawRead: number;
  runs: number[];
  /** µs of CPU per event of the best run: bench process (the reader), nats-server, total. */
  cpuUs: Record<string, number>;
  /** events/s of the diagnostics (same server, after the main figure). */
  receiveOnly: number;
  kappaShaped: number;
  logSubscription: number;
}

type Variant = "receive" | "parse" | "shaped";
const dec = new TextDecoder();

/** Reads the stream once from the start with an ordered consumer; returns elapsed ms. */
export async function readOnce(js: JetStreamClient, lastSeq: number, variant: Variant, label: string): Promise<number> {
  const c = await js.consumers.get(SPEC.stream);
  const bar = new Progress(label, lastSeq);
  let sink = 0;
  const t0 = performance.now();
  let t1 = 0;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const msgs = await c.consume({
    max_messages: 10_000,
    callback: (m: JsMsg) => {
      if (variant === "parse") sink += (JSON.parse(dec.decode(m.data)) as { amount?: number }).amount ? 1 : 0;
      else if (variant === "shaped") sink += shaped(m);
      else sink += m.data.length;
      const seq = m.seq;
      if ((seq & 0xffff) === 0) bar.update(seq);
      if (seq >= lastSeq && !t1) {
        t1 = performance.now();
        finish();
      }
    },
  });
  await Promise.race([done, msgs.closed().then(() => Promise.reject(new Error("the consumer closed before the last event")))]);
  msgs.stop();
  bar.update(lastSeq);
  bar.stop();
  if (sink < 0) console.log(sink); // keep the work observable
  return t1 - t0;
}

/** The per-message work LogSubscription does before the applier: ack-subject info, two headers, a time string, the type. */
function shaped(m: JsMsg): number {
  const info = m.info;
  const h = m.headers;
  const ev: RawEvent = {
    seq: m.seq,
    type: m.subject.slice(SPEC.prefix.length + 1),
    time: h?.get(TIME_HEADER) || new Date(Math.floor(info.timestampNanos / 1e6)).toISOString(),
    id: h?.get("Nats-Msg-Id") ?? "",
    data: m.data,
  };
  const d = JSON.parse(dec.decode(ev.data)) as { amount?: number };
  return (d.amount ? 1 : 0) + (info.pending === 0 ? 1 : 0);
}

/** Kappa's reader with a handler that only parses: the reader's own ceiling. */
async function readWithLogSubscription(js: JetStreamClient, lastSeq: number): Promise<number> {
  const bar = new Progress("LogSubscription", lastSeq);
  let sink = 0;
  let t1 = 0;
  const t0 = performance.now();
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const sub = await LogSubscription.open(js, { stream: SPEC.stream, prefix: SPEC.prefix }, (b) => {
    for (const e of b.events) sink += (JSON.parse(dec.decode(e.data)) as { amount?: number }).amount ? 1 : 0;
    bar.update(b.lastSeq);
    if (b.lastSeq >= lastSeq && !t1) {
      t1 = performance.now();
      finish();
    }
  });
  await done;
  await sub.stop();
  bar.stop();
  if (sink < 0) console.log(sink);
  return t1 - t0;
}

/** Runs the raw-read stage on a fresh server filled with the corpus. */
export async function measureRead(corpus: string, events: number): Promise<ReadResult> {
  return withScope(async (scope) => {
    const server = await startServer(scope);
    const nc = await connect(scope, server.url);
    const last = await fill(nc, corpus, events);
    const js = jetstream(nc);
    const runs: { ms: number; cpu: Record<string, number> }[] = [];
    for (let i = 0; i < 2; i++) {
      const meter = new CpuMeter({ reader: process.pid, server: server.pid });
      const ms = await readOnce(js, last, "parse", "raw read");
      runs.push({ ms, cpu: meter.stop() });
    }
    const best = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
    const receive = await readOnce(js, last, "receive", "receive only");
    const shapedMs = await readOnce(js, last, "shaped", "kappa-shaped");
    const subMs = await readWithLogSubscription(js, last);
    return { events, rawRead: rate(events, best.ms), runs: runs.map((r) => rate(events, r.ms)), cpuUs: perEvent(best.cpu, events), receiveOnly: rate(events, receive), kappaShaped: rate(events, shapedMs), logSubscription: rate(events, subMs) };
  });
}
