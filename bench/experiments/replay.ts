/**
 * Experiment (evidence for src/log/reader.ts + src/processors/apply.ts/runner.ts): Kappa's single-thread
 * replay path in-process (LogSubscription + BatchApplier) against a two-thread prototype — the NATS thread
 * only copies each message's raw header+payload bytes into one batch buffer, a worker thread decodes,
 * parses and applies; at most `inflight` batches are queued (the reading thread blocks on Atomics.wait,
 * so memory stays bounded) — and against the raw read ceiling, all on one server in one run.
 * Usage: tsx bench/experiments/replay.ts [events]
 */
import { Worker as Thread } from "node:worker_threads";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { jetstream, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import { LogSubscription } from "../../src/log/index.js";
import { BatchApplier, bundleProcessor, hashCode, loadProcessor } from "../../src/processors/index.js";
import { ViewWriter } from "../../src/views/index.js";
import { SPEC, corpusFile, scratch, startServer, connect, fill, removeScratch } from "../lib/env.js";
import { withScope } from "../lib/scope.js";
import { CpuMeter, perEvent } from "../lib/cpu.js";
import { fmt, rate, sleep } from "../lib/stats.js";
import { PROCESSOR } from "../measure/replay.js";

const dec = new TextDecoder();
let runNo = 0;
const viewPath = () => join(scratch, `exp-${runNo++}.sqlite`);

async function rawRead(js: JetStreamClient, last: number): Promise<number> {
  const c = await js.consumers.get(SPEC.stream);
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  let sink = 0;
  const msgs = await c.consume({ max_messages: 10_000, callback: (m) => {
    sink += (JSON.parse(dec.decode(m.data)) as { amount?: number }).amount ? 1 : 0;
    if (m.seq >= last) finish();
  } });
  await done;
  msgs.stop();
  return sink;
}

async function singleThread(js: JetStreamClient, last: number, code: { hash: string; text: string }): Promise<string> {
  const def = await loadProcessor({ hash: code.hash, kind: "js", text: code.text }, scratch);
  const writer = ViewWriter.open(viewPath(), { processor: def.name, version: 1, codeHash: code.hash }, def.schema);
  const applier = new BatchApplier(writer, def, 1);
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const sub = await LogSubscription.open(js, { stream: SPEC.stream, prefix: SPEC.prefix }, (b) => {
    applier.apply(b.events);
    if (b.lastSeq >= last) finish();
  });
  await done;
  await sub.stop();
  const placed = (writer.db.prepare("SELECT coalesce(sum(orders), 0) AS n FROM totals").get() as { n: number }).n;
  writer.close();
  return `placed orders ${placed}`;
}

const CAP = 4 << 20;
type Sink = (buf: ArrayBuffer, end: number, types: string[] | undefined, ids?: string[]) => void;
interface LeanApplier {
  apply(buf: ArrayBuffer, end: number, types: string[] | undefined, ids?: string[]): number;
  placedOrders(): number;
  close(): void;
}

/**
 * The reading half: copies each message's raw header+payload bytes and its seq, time and type index into
 * one batch buffer, hands the buffer over when it holds `maxEvents` or the log has nothing more pending.
 */
async function leanRead(js: JetStreamClient, maxEvents: number, sink: Sink, publicApi = false): Promise<{ stop: () => void }> {
  let buf = new ArrayBuffer(CAP);
  let u8 = new Uint8Array(buf);
  let dv = new DataView(buf);
  let end = 0;
  let count = 0;
  const types = new Map<string, number>();
  const typeList: string[] = [];
  let typesChanged = false;
  let ids: string[] = [];
  const flush = () => {
    if (end === 0) return;
    sink(buf, end, typesChanged ? [...typeList] : undefined, publicApi ? ids : undefined);
    ids = [];
    typesChanged = false;
    buf = new ArrayBuffer(CAP);
    u8 = new Uint8Array(buf);
    dv = new DataView(buf);
    end = 0;
    count = 0;
  };
  const c = await js.consumers.get(SPEC.stream);
  const msgs = await c.consume({ max_messages: 10_000, callback: (m: JsMsg) => {
    // nats-core keeps the raw header+payload bytes and the header length on the Msg (internal fields)
    const inner = (m as unknown as { msg: { _rdata: Uint8Array; _msg: { hdr: number } } }).msg;
    const raw = publicApi ? m.data : inner._rdata;
    if (publicApi) ids.push(m.headers?.get("Nats-Msg-Id") ?? "");
    const info = m.info;
    let t = types.get(m.subject);
    if (t === undefined) {
      t = typeList.length;
      types.set(m.subject, t);
      typeList.push(m.subject);
      typesChanged = true;
    }
    if (end + 26 + raw.length > CAP) flush();
    dv.setFloat64(end, info.streamSequence, true);
    dv.setFloat64(end + 8, Math.floor(info.timestampNanos / 1e6), true);
    dv.setUint16(end + 16, t, true);
    dv.setUint32(end + 18, publicApi ? 0 : Math.max(0, inner._msg.hdr), true);
    dv.setUint32(end + 22, raw.length, true);
    u8.set(raw, end + 26);
    end += 26 + raw.length;
    if (++count >= maxEvents || info.pending === 0) flush();
  } });
  return { stop: () => msgs.stop() };
}

async function leanOneThread(js: JetStreamClient, last: number, codeFile: string, publicApi = false): Promise<string> {
  const mod = new URL("./leanApply.mjs", import.meta.url).href;
  const { createApplier } = (await import(mod)) as { createApplier: (p: string, d: unknown) => LeanApplier };
  const applier = createApplier(viewPath(), ((await import(pathToFileURL(codeFile).href)) as { default: unknown }).default);
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const reader = await leanRead(js, 5000, (buf, end, types, ids) => {
    if (applier.apply(buf, end, types, ids) >= last) finish();
  }, publicApi);
  await done;
  reader.stop();
  const placed = applier.placedOrders();
  applier.close();
  return `placed orders ${placed}`;
}

async function twoThreads(js: JetStreamClient, last: number, codeFile: string, inflight: number, maxEvents: number): Promise<string> {
  const ctl = new Int32Array(new SharedArrayBuffer(8));
  const thread = new Thread(new URL("./applyThread.mjs", import.meta.url), { workerData: { path: viewPath(), ctl: ctl.buffer, code: pathToFileURL(codeFile).href } });
  await once(thread, "message");
  let blockedMs = 0;
  let maxQueued = 0;
  const reader = await leanRead(js, maxEvents, (buf, end, types) => {
    if (Atomics.load(ctl, 0) >= inflight) {
      const t = performance.now();
      for (let q = Atomics.load(ctl, 0); q >= inflight; q = Atomics.load(ctl, 0)) Atomics.wait(ctl, 0, q, 1000);
      blockedMs += performance.now() - t;
    }
    maxQueued = Math.max(maxQueued, Atomics.add(ctl, 0, 1) + 1);
    thread.postMessage({ buf, end, types }, [buf]);
  });
  while (Atomics.load(ctl, 1) < last) await sleep(1);
  reader.stop();
  thread.postMessage("count");
  const [{ placed }] = (await once(thread, "message")) as [{ placed: number }];
  await thread.terminate();
  return `placed orders ${placed}; reader blocked ${Math.round(blockedMs)} ms; max queued ${maxQueued}`;
}

const n = Number(process.argv[2] ?? 1_000_000);
try {
  await withScope(async (scope) => {
    const server = await startServer(scope);
    const nc = await connect(scope, server.url);
    const last = await fill(nc, await corpusFile(n), n);
    const js = jetstream(nc);
    const b = await bundleProcessor(PROCESSOR);
    const code = { hash: hashCode(b.text), text: b.text };
    const codeFile = join(scratch, "orders_by_user.mjs");
    writeFileSync(codeFile, b.text);
    const variants: Record<string, () => Promise<unknown>> = {
      "raw read (ceiling)": () => rawRead(js, last),
      "kappa single thread (LogSubscription+BatchApplier)": () => singleThread(js, last, code),
      "one thread, lean batches (copy raw bytes, apply inline)": () => leanOneThread(js, last, codeFile),
      "one thread, lean, public API (m.data, m.headers.get)": () => leanOneThread(js, last, codeFile, true),
      "two threads, 4 batches in flight, 5000/batch": () => twoThreads(js, last, codeFile, 4, 5000),
      "two threads, 2 batches in flight, 5000/batch": () => twoThreads(js, last, codeFile, 2, 5000),
      "two threads, 4 batches in flight, 10000/batch": () => twoThreads(js, last, codeFile, 4, 10_000),
      "two threads, 1 batch in flight, 5000/batch": () => twoThreads(js, last, codeFile, 1, 5000),
    };
    for (let round = 0; round < 2; round++) {
      for (const [name, run] of Object.entries(variants)) {
        const meter = new CpuMeter({ bench: process.pid, server: server.pid });
        const t0 = performance.now();
        const extra = await run();
        const ms = performance.now() - t0;
        const cpu = perEvent(meter.stop(), n);
        console.log(`${name.padEnd(56)} ${fmt(rate(n, ms)).padStart(9)}/s  CPU µs/event bench ${cpu.bench} server ${cpu.server}  (${extra})`);
      }
    }
  });
} finally {
  removeScratch();
}
