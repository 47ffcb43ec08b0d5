import { Worker as Thread } from "node:worker_threads";
import { KappaError } from "../errors.js";
import type { BatchPacker, NatsOptions, PackedBatch, ReadSpec } from "../log/index.js";
import { readerThreadFile } from "./threadBundle.js";
import type { FromReader, ReaderInit, ToReader, WireError } from "./readerProtocol.js";

/** What a version's reader needs of a subscription, wherever it reads (LogSubscription has all of it). */
export interface PackedSubscription {
  readonly closed: Promise<Error | undefined>;
  readonly maxEvents: number;
  setMaxEvents(n: number): void;
  setWindow(n: number): void;
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

function fromWire(e: WireError): KappaError {
  return new KappaError(e.code ?? "READ_FAILED", e.message, e.hint ? { hint: e.hint } : {});
}

/** A subscription that lives on the bulk reader thread; this side forwards calls and receives batches. */
class RemoteSubscription implements PackedSubscription {
  #maxEvents: number;
  #ended = false;
  #end!: (e: Error | undefined) => void;
  readonly closed = new Promise<Error | undefined>((r) => (this.#end = r));

  constructor(readonly id: number, private readonly reader: BulkReader, maxEvents: number, readonly packer: BatchPacker, readonly handler: (b: PackedBatch) => void) {
    this.#maxEvents = maxEvents;
  }

  get maxEvents(): number {
    return this.#maxEvents;
  }

  setMaxEvents(n: number): void {
    this.#maxEvents = Math.max(1, Math.floor(n));
    this.reader.send({ kind: "max-events", id: this.id, n: this.#maxEvents });
  }

  setWindow(n: number): void {
    this.reader.send({ kind: "window", id: this.id, n });
  }

  pause(): void {
    this.reader.send({ kind: "pause", id: this.id });
  }

  resume(): void {
    this.reader.send({ kind: "resume", id: this.id });
  }

  async stop(): Promise<void> {
    if (!this.#ended) this.reader.send({ kind: "stop", id: this.id });
    await this.closed;
  }

  /** The thread said it ended (stopped, failed, or the thread is gone). */
  ended(err: Error | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#end(err);
  }
}

/**
 * A worker's bulk reader: one thread with its own NATS connection that reads for every version catching
 * up (readerThread.ts), at lower priority when the worker lowers rebuilds. Its batches are packed with
 * each version's own type table and come back here as transferred buffers, so the runner treats them as
 * batches read on the main thread. A thread that dies ends its subscriptions with an error (the runners
 * retry from their checkpoints) and is started again on the next open.
 */
export class BulkReader {
  #thread: Thread | undefined;
  #nextId = 1;
  readonly #subs = new Map<number, RemoteSubscription>();
  readonly #opening = new Map<number, { sub: RemoteSubscription; resolve: () => void; reject: (e: Error) => void }>();
  #closed = false;

  constructor(private readonly nats: NatsOptions, private readonly lower: boolean, private readonly codeDir: string) {
    // Bundled now, not at the first rebuild: bundling is a burst of CPU at normal priority, which would
    // land on whatever the rebuild is meant to give way to.
    readerThreadFile(codeDir).catch(() => {});
  }

  /** Opens a subscription on the reader thread; batches go to `handler` on this thread. */
  async open(spec: ReadSpec, packer: BatchPacker, handler: (b: PackedBatch) => void): Promise<PackedSubscription> {
    if (this.#closed) throw new KappaError("READER_CLOSED", "the worker is stopping");
    const thread = await this.#ensure();
    const id = this.#nextId++;
    const sub = new RemoteSubscription(id, this, spec.limits?.maxEvents ?? 5000, packer, handler);
    const opened = new Promise<void>((resolve, reject) => this.#opening.set(id, { sub, resolve, reject }));
    thread.postMessage({ kind: "open", id, spec, types: [...packer.types], prefixLength: spec.prefix.length + 1, paused: false } satisfies ToReader);
    await opened;
    return sub;
  }

  /** For the subscriptions: a control message to the thread (dropped when there is none). */
  send(m: ToReader): void {
    this.#thread?.postMessage(m);
  }

  async #ensure(): Promise<Thread> {
    if (this.#thread) return this.#thread;
    const file = await readerThreadFile(this.codeDir);
    if (this.#thread) return this.#thread;
    const t = new Thread(file, { workerData: { nats: this.nats, lower: this.lower } satisfies ReaderInit });
    t.on("message", (m: FromReader) => this.#onMessage(m));
    t.on("error", (err) => this.#gone(t, `the bulk reader thread crashed: ${err.message}`));
    t.on("exit", (code) => this.#gone(t, `the bulk reader thread exited with code ${code}`));
    t.unref();
    this.#thread = t;
    return t;
  }

  #onMessage(m: FromReader): void {
    if (m.kind === "batch") {
      const sub = this.#subs.get(m.id);
      if (!sub) return;
      sub.packer.absorb(m.batch);
      sub.handler(m.batch);
    } else if (m.kind === "opened") {
      const o = this.#opening.get(m.id);
      if (!o) return;
      this.#opening.delete(m.id);
      this.#subs.set(m.id, o.sub);
      o.resolve();
    } else if (m.kind === "open-failed") {
      const o = this.#opening.get(m.id);
      this.#opening.delete(m.id);
      o?.reject(fromWire(m.error));
    } else if (m.kind === "closed") {
      const sub = this.#subs.get(m.id) ?? this.#opening.get(m.id)?.sub;
      this.#subs.delete(m.id);
      const o = this.#opening.get(m.id);
      this.#opening.delete(m.id);
      o?.reject(new KappaError("READ_FAILED", "the subscription closed while opening"));
      sub?.ended(m.error ? fromWire(m.error) : undefined);
    }
  }

  /** The thread is gone: every subscription on it ends with that error, and the next open starts a new one. */
  #gone(t: Thread, why: string): void {
    if (this.#thread !== t) return;
    this.#thread = undefined;
    const err = new KappaError("READER_GONE", why);
    for (const [, o] of this.#opening) o.reject(err);
    this.#opening.clear();
    for (const [, s] of this.#subs) s.ended(this.#closed ? undefined : err);
    this.#subs.clear();
  }

  /** Stops every subscription, closes the thread's connection and ends the thread. */
  async close(): Promise<void> {
    this.#closed = true;
    const t = this.#thread;
    if (!t) return;
    const bye = new Promise<void>((r) => t.once("exit", () => r()));
    t.postMessage({ kind: "close" } satisfies ToReader);
    const timer = setTimeout(() => void t.terminate(), 5000);
    await bye;
    clearTimeout(timer);
  }
}
