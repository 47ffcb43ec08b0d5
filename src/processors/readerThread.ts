// The bulk reader thread of a worker: the reading of every version that is catching up, on a NATS
// connection of its own, at lower priority. The worker's main thread then parses only live versions'
// messages, so live reads, catalog watches and anything else on it keep their share while a rebuild reads
// at full speed, and the rebuild's reading gives way to queries and live work for the CPU (live first).
// Batches go to the main thread as transferred buffers; it hands them on to the version's apply thread.
// Runs bundled (threadBundle.ts), so it imports files directly rather than the packages' index barrels.
import { parentPort, workerData } from "node:worker_threads";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connectNats } from "../log/connect.js";
import { LogSubscription, type ReadSpec } from "../log/reader.js";
import { BatchPacker, type PackedBatch } from "../log/packed.js";
import { messageOf } from "../errors.js";
import { lowerThreadPriority } from "./liveFirst.js";
import type { ReaderInit, ToReader, FromReader, WireError } from "./readerProtocol.js";

const init = workerData as ReaderInit;
const port = parentPort!;
const subs = new Map<number, LogSubscription<PackedBatch>>();
/** Subscriptions asked to stop while they were still opening. */
const cancelled = new Set<number>();

function send(m: FromReader, transfer?: ArrayBuffer[]): void {
  port.postMessage(m, transfer);
}

function wire(err: unknown): WireError {
  const code = (err as { code?: unknown })?.code;
  const hint = (err as { hint?: unknown })?.hint;
  return { message: messageOf(err), ...(typeof code === "string" ? { code } : {}), ...(typeof hint === "string" ? { hint } : {}) };
}

if (init.lower) lowerThreadPriority();
let nc: NatsConnection | undefined;
const connected = connectNats(init.nats).then((c) => (nc = c));
connected.catch(() => {});

async function open(id: number, spec: ReadSpec, types: string[], prefixLength: number, paused: boolean): Promise<void> {
  try {
    const js = jetstream(await connected);
    const packer = new BatchPacker(prefixLength, types);
    const sub = await LogSubscription.openPacked(js, spec, packer, (b) => send({ kind: "batch", id, batch: b }, [b.buf]));
    if (cancelled.delete(id)) {
      await sub.stop().catch(() => {});
      send({ kind: "closed", id });
      return;
    }
    if (paused) sub.pause();
    subs.set(id, sub);
    send({ kind: "opened", id });
    void sub.closed.then((err) => {
      subs.delete(id);
      send({ kind: "closed", id, ...(err ? { error: wire(err) } : {}) });
    });
  } catch (err) {
    cancelled.delete(id);
    send({ kind: "open-failed", id, error: wire(err) });
  }
}

port.on("message", (m: ToReader) => {
  if (m.kind === "open") {
    void open(m.id, m.spec, m.types, m.prefixLength, m.paused);
    return;
  }
  if (m.kind === "close") {
    void Promise.all([...subs.values()].map((s) => s.stop().catch(() => {})))
      .then(() => nc?.close())
      .catch(() => {})
      .finally(() => {
        send({ kind: "bye" });
        port.close();
      });
    return;
  }
  const sub = subs.get(m.id);
  if (!sub) {
    if (m.kind === "stop") cancelled.add(m.id);
    return;
  }
  if (m.kind === "pause") sub.pause();
  else if (m.kind === "resume") sub.resume();
  else if (m.kind === "window") sub.setWindow(m.n);
  else if (m.kind === "max-events") sub.setMaxEvents(m.n);
  else if (m.kind === "stop") void sub.stop();
});
