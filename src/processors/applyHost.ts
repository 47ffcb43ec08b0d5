import { Worker as Thread } from "node:worker_threads";
import type { PackedBatch } from "../log/index.js";
import type { SchemaNote } from "../views/index.js";
import { applyThreadFile } from "./threadBundle.js";
import { PROGRESS_BYTES, PROGRESS_SEQ_OFFSET, PROGRESS_TICKS, PROGRESS_TYPE, type AppliedReport, type FromThread, type ThreadInit, type ToThread } from "./applyProtocol.js";

/** The event an apply thread was on when it stopped answering or died. */
export interface ThreadPosition {
  seq?: number;
  type?: string;
}

/** What the runner hears from its thread. */
export interface ThreadEvents {
  onApplied(r: AppliedReport): void;
  /** A batch failed (SQLite busy, a checkpoint conflict): nothing of it was kept; read again from `checkpoint`. */
  onBatchError(message: string, checkpoint: number | undefined): void;
  /** A handler ran past the timeout; the thread has been stopped. */
  onStuck(at: ThreadPosition, ms: number): void;
  /** The thread died (an uncaught error, process.exit in a handler, out of memory). */
  onCrash(reason: string, at: ThreadPosition): void;
  /** The event type at an index of the packer's type table. */
  typeAt(index: number): string | undefined;
}

/** An apply thread that could not start: `transient` when a retry may succeed. */
export class ThreadStartError extends Error {
  override readonly name = "ThreadStartError";
  constructor(message: string, readonly transient: boolean, readonly code?: string) {
    super(message);
  }
}

/**
 * The runner's handle on its apply thread: posts batches (their buffers move, no copy), and watches the
 * thread. A handler that makes no progress for `timeoutMs` gets its thread terminated (better-sqlite3 and
 * a busy loop can only be stopped that way); an exit the runner did not ask for is a crash.
 */
export class ApplyThread {
  readonly #thread: Thread;
  readonly #words: Int32Array;
  readonly #seq: Float64Array;
  readonly #watch: NodeJS.Timeout;
  #outstanding = 0;
  #lastTicks = 0;
  #lastProgressAt = performance.now();
  #ending = false;
  #gone = false;
  #closed: (() => void) | undefined;

  private constructor(thread: Thread, progress: SharedArrayBuffer, private readonly timeoutMs: number, private readonly events: ThreadEvents) {
    this.#thread = thread;
    this.#words = new Int32Array(progress);
    this.#seq = new Float64Array(progress, PROGRESS_SEQ_OFFSET, 1);
    thread.on("message", (m: FromThread) => this.#onMessage(m));
    thread.on("error", (err) => this.#died(`apply thread crashed: ${err.message}`));
    thread.on("exit", (code) => this.#died(`apply thread exited with code ${code}`));
    this.#watch = setInterval(() => this.#check(), Math.max(20, Math.min(1000, timeoutMs / 4)));
    this.#watch.unref();
  }

  /** Starts a thread and waits until it has opened the view file; `checkpoint` is the file's. */
  static async start(init: Omit<ThreadInit, "progress">, timeoutMs: number, events: ThreadEvents): Promise<{ thread: ApplyThread; checkpoint: number; replaced?: string; schema?: SchemaNote[] }> {
    const file = await applyThreadFile(init.codeDir);
    const progress = new SharedArrayBuffer(PROGRESS_BYTES);
    const t = new Thread(file, { workerData: { ...init, progress } satisfies ThreadInit });
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        t.off("message", onMsg);
        t.off("error", onErr);
        t.off("exit", onExit);
        f();
      };
      const onMsg = (m: FromThread) => {
        if (m.kind === "ready") done(() => resolve({ thread: new ApplyThread(t, progress, timeoutMs, events), checkpoint: m.checkpoint, ...(m.replaced ? { replaced: m.replaced } : {}), ...(m.schema ? { schema: m.schema } : {}) }));
        else if (m.kind === "error") done(() => reject(new ThreadStartError(m.message, m.transient, m.code)));
      };
      const onErr = (err: Error) => done(() => reject(new ThreadStartError(`apply thread crashed while starting: ${err.message}`, true)));
      const onExit = (code: number) => done(() => reject(new ThreadStartError(`apply thread exited with code ${code} while starting`, true)));
      // A module whose top-level code never returns must not hold the version forever.
      const timer = setTimeout(() => done(() => {
        void t.terminate();
        reject(new ThreadStartError(`the processor's code did not load within ${timeoutMs} ms`, false));
      }), timeoutMs + 5000);
      t.on("message", onMsg);
      t.on("error", onErr);
      t.on("exit", onExit);
    });
  }

  /** Batches handed over and not yet reported on. */
  get outstanding(): number {
    return this.#outstanding;
  }

  /** Hands a batch over; its buffer belongs to the thread from now on. */
  post(batch: PackedBatch, gen: number): void {
    if (this.#gone) return;
    if (this.#outstanding === 0) this.#lastProgressAt = performance.now();
    this.#outstanding++;
    this.#send({ kind: "batch", batch, gen }, [batch.buf]);
  }

  /** Moves the checkpoint to `seq` with no rows, if it still stands at `from`. */
  advance(seq: number, from: number): void {
    if (this.#gone) return;
    if (this.#outstanding === 0) this.#lastProgressAt = performance.now();
    this.#outstanding++;
    this.#send({ kind: "advance", seq, from });
  }

  /** Puts a thread started in the background back to normal priority. */
  foreground(): void {
    if (!this.#gone) this.#send({ kind: "foreground" });
  }

  #send(m: ToThread, transfer?: ArrayBuffer[]): void {
    this.#thread.postMessage(m, transfer);
  }

  #onMessage(m: FromThread): void {
    if (m.kind === "applied") {
      this.#outstanding = Math.max(0, this.#outstanding - 1);
      this.#lastProgressAt = performance.now();
      this.events.onApplied(m);
    } else if (m.kind === "error") {
      this.#outstanding = 0; // the thread drops the rest of that generation
      this.events.onBatchError(m.message, m.checkpoint);
    } else if (m.kind === "closed") {
      this.#closed?.();
    }
  }

  #position(): ThreadPosition {
    const seq = this.#seq[0]!;
    const t = Atomics.load(this.#words, PROGRESS_TYPE);
    const type = seq > 0 && t >= 0 ? this.events.typeAt(t) : undefined;
    return { ...(seq > 0 ? { seq } : {}), ...(type ? { type } : {}) };
  }

  /** The watchdog: progress is any tick (an event started, a batch ended); none for timeoutMs while work is queued = stuck. */
  #check(): void {
    if (this.#gone || this.#ending) return;
    const ticks = Atomics.load(this.#words, PROGRESS_TICKS);
    const now = performance.now();
    if (ticks !== this.#lastTicks || this.#outstanding === 0) {
      this.#lastTicks = ticks;
      this.#lastProgressAt = now;
      return;
    }
    const stalled = now - this.#lastProgressAt;
    if (stalled < this.timeoutMs) return;
    const at = this.#position();
    this.#gone = true;
    clearInterval(this.#watch);
    void this.#thread.terminate();
    this.events.onStuck(at, Math.round(stalled));
  }

  #died(reason: string): void {
    if (this.#gone) return;
    this.#gone = true;
    clearInterval(this.#watch);
    this.#closed?.();
    if (!this.#ending) this.events.onCrash(reason, this.#outstanding > 0 ? this.#position() : {});
  }

  /** Lets queued batches finish, closes the view file and ends the thread (terminated if it does not answer in time). */
  async close(): Promise<void> {
    if (this.#ending) return;
    this.#ending = true;
    clearInterval(this.#watch);
    if (this.#gone) {
      await this.#thread.terminate();
      return;
    }
    const closed = new Promise<void>((r) => (this.#closed = r));
    const exited = new Promise<void>((r) => this.#thread.once("exit", () => r()));
    this.#send({ kind: "close" });
    const timer = setTimeout(() => void this.#thread.terminate(), this.timeoutMs);
    await closed;
    // Let it end by itself (it closed its port): a thread that ends this way writes its --cpu-prof profile.
    await Promise.race([exited, new Promise((r) => setTimeout(r, 1000).unref())]);
    clearTimeout(timer);
    await this.#thread.terminate();
  }

  /** Stops the thread at once (a failed version). */
  async terminate(): Promise<void> {
    this.#ending = true;
    this.#gone = true;
    clearInterval(this.#watch);
    await this.#thread.terminate();
  }
}
