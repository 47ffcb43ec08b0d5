import Database, { type Database as Db } from "better-sqlite3";
import { existsSync, statSync } from "node:fs";
import { messageOf } from "../errors.js";
import { BatchPacker, logIdentity, type PackedBatch } from "../log/index.js";
import type { VersionRecord, VersionFailure, SchemaNote } from "../views/index.js";
import type { ProcessorDefinition } from "./define.js";
import { DEFAULT_HANDLER_TIMEOUT_MS, threadInit, type RunnerDeps } from "./runnerDeps.js";
import type { AppliedReport } from "./applyProtocol.js";
import { ApplyThread, ThreadStartError, type ThreadPosition } from "./applyHost.js";
import { OutboxPublisher } from "./outbox.js";
import { crashFailure, crashRestartLine, stuckFailure } from "./threadFailures.js";
import { DurationHistogram } from "./histogram.js";
import { idleVerdict } from "./idle.js";
import { VersionReader } from "./versionReader.js";

/** A thread that dies this often without moving the checkpoint fails its version. */
const MAX_CRASHES = 3;
export { DEFAULT_HANDLER_TIMEOUT_MS, type InputSpec, type RunnerDeps } from "./runnerDeps.js";

/**
 * Keeps one view version current: resumes from its checkpoint, reads the log on the NATS thread and hands
 * each batch as raw bytes to the version's own apply thread (parsing, handlers and SQLite run there),
 * detects catch-up, and restarts after transient failures.
 */
export class VersionRunner {
  readonly name: string;
  readonly version: number;
  #thread: ApplyThread | undefined;
  readonly #reader: VersionReader;
  #outbox: OutboxPublisher | undefined;
  #outboxDb: Db | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  #failed = false;
  #lastBatchAt = 0;
  #idleCheckRunning = false;
  #restarts = 0;
  #crashes = 0;
  #crashCheckpoint = -1;
  /** After a crash, events are applied one per transaction up to where it died, so all before it commits. */
  #carefulUntil = 0;
  /** Whether the advance on its way to the thread completes a catch-up (a pipeline stage's upstream has settled). */
  #advanceCaughtUp = false;
  #checkpoint = 0;
  #appliedBase = 0;
  #applied = 0;
  #skipped = 0;
  /** The apply thread runs at lower priority (the version is catching up; live versions first). */
  #niced = false;
  #packer: BatchPacker;
  /** Matching events known to be still unread (0 once caught up). */
  pending = 0;
  caughtUp = false;
  /** The checkpoint of the snapshot this replica started from, when it joined from one. */
  restoredFrom: number | undefined;
  lastTrouble: string | undefined;
  /** Schema versions the build met that the code cannot upcast (from the view file: exact across restarts). */
  schemaNotes: SchemaNote[] = [];
  /** How long applying each batch took (on the apply thread). */
  readonly batchTimes = new DurationHistogram();

  constructor(readonly record: VersionRecord, readonly def: ProcessorDefinition, private readonly deps: RunnerDeps) {
    this.name = def.name;
    this.version = record.version;
    this.#packer = new BatchPacker(deps.input.prefix.length + 1);
    const self = this;
    this.#reader = new VersionReader(deps, this.#packer, {
      get caughtUp() {
        return self.caughtUp;
      },
      get queued() {
        return self.#thread?.outstanding ?? 0;
      },
      get careful() {
        return self.#checkpoint < self.#carefulUntil;
      },
      onBatch: (b, gen) => this.#onBatch(b, gen),
      onReadError: (err) => void this.#retryLater(err),
    });
  }

  /** The stream this version reads (the main log, or an upstream version's output). */
  get inputStream(): string {
    return this.deps.input.stream;
  }

  /** Last applied sequence. */
  get checkpoint(): number {
    return this.#checkpoint;
  }

  /** Events applied since this runner started. */
  get applied(): number {
    return this.#appliedBase + this.#applied;
  }

  get skipped(): number {
    return this.#skipped;
  }

  get outboxPending(): number {
    return this.#outbox?.pending ?? 0;
  }

  /** True when every emit applied so far has been acknowledged by the output stream. */
  get outboxEmpty(): boolean {
    return this.#outbox?.empty ?? true;
  }

  /** Starts an outbox round (after this worker became the writer, or to prune what the writer published). */
  kickOutbox(): void {
    this.#outbox?.kick();
  }

  get walBytes(): number {
    try {
      return statSync(this.#path + "-wal").size;
    } catch {
      return 0;
    }
  }

  get failed(): boolean {
    return this.#failed;
  }

  get #path(): string {
    return this.deps.dataDir.viewFile(this.name, this.version);
  }

  get #timeoutMs(): number {
    return this.deps.handlerTimeoutMs ?? DEFAULT_HANDLER_TIMEOUT_MS;
  }

  /** Starts the apply thread (it opens the view file, running migrations) and follows the log. */
  async start(): Promise<void> {
    if (!(await this.#startThread())) return;
    if (this.deps.output && !this.#outbox) {
      // The outbox is published from here (NATS); a second connection to the file reads and clears it.
      this.#outboxDb = new Database(this.#path);
      this.#outboxDb.pragma(`busy_timeout = ${this.deps.busyTimeoutMs ?? 5000}`);
      this.#outbox = new OutboxPublisher(this.#outboxDb, this.deps.nc, this.deps.output, `${this.name}:${this.version}`, this.deps.onTrouble, this.deps.gate);
      this.#outbox.kick();
    }
    await this.#subscribe();
    if (this.#stopped || this.#failed || this.#idleTimer) return;
    this.#idleTimer = setInterval(() => void this.#idleCheck(), 250);
    this.#idleTimer.unref();
  }

  async #startThread(): Promise<boolean> {
    let log: string;
    try {
      log = await logIdentity(this.deps.jsm, this.deps.input.stream);
    } catch (err) {
      void this.#retryLater(err);
      return false;
    }
    if (this.#stopped) return false;
    if (this.deps.restore && !existsSync(this.#path)) {
      try {
        this.restoredFrom = (await this.deps.restore(this.#path)) ?? undefined;
      } catch (err) {
        this.deps.onTrouble(`${this.name} v${this.version}: no snapshot restored (${messageOf(err)}) — replaying the whole log`);
      }
      if (this.#stopped) return false;
    }
    const background = !this.caughtUp && this.deps.liveFirst?.lowerRebuilds === true;
    try {
      const { thread, checkpoint, replaced, schema } = await ApplyThread.start(threadInit(this.name, this.record, this.deps, this.#path, log, background), this.#timeoutMs, {
        onApplied: (r) => this.#onApplied(r),
        onBatchError: (message, checkpoint) => {
          if (checkpoint !== undefined) this.#checkpoint = checkpoint;
          void this.#retryLater(new Error(message));
        },
        onStuck: (at, ms) => this.#onStuck(at, ms),
        onCrash: (reason, at) => void this.#onCrash(reason, at),
        typeAt: (i) => this.#packer.typeAt(i),
      });
      if (this.#stopped || this.#failed) {
        await thread.terminate();
        return false;
      }
      this.#thread = thread;
      // An idle check that began before a crash can mark the version caught up while this thread was
      // starting, when there was no thread to put back: #markCaughtUp runs once, so it is done here.
      if (background && this.caughtUp) thread.foreground();
      this.#niced = background && !this.caughtUp;
      this.#checkpoint = checkpoint;
      this.#setSchemaNotes(schema ?? []);
      this.#packer.reset(true);
      if (replaced) this.deps.onTrouble(`${this.name} v${this.version}: ${replaced}`);
      return true;
    } catch (err) {
      if (err instanceof ThreadStartError && !err.transient) {
        this.#fail({ message: err.message, at: new Date().toISOString() });
      } else void this.#retryLater(err);
      return false;
    }
  }

  /** Reads from the checkpoint on, as a new generation of the reader (see VersionReader). */
  async #subscribe(): Promise<void> {
    if (this.#stopped || this.#failed || !this.#thread || this.#frozenDone()) return;
    const startSeq = Math.max(this.#checkpoint + 1, this.record.startSeq ?? 1);
    await this.#reader.open(startSeq, () => !this.#stopped && !this.#failed);
  }

  /** Drops the current consumer and reads again from the checkpoint (after a reconnect, say), instead of waiting for missed heartbeats. */
  async restartReading(): Promise<void> {
    if (this.#stopped || this.#failed || !this.#thread) return;
    await this.#subscribe();
  }

  #onBatch(batch: PackedBatch, gen: number): void {
    const thread = this.#thread;
    if (!thread) return;
    this.#lastBatchAt = Date.now();
    thread.post(batch, gen);
  }

  #onApplied(r: AppliedReport): void {
    this.#checkpoint = r.checkpoint;
    // First: a poison event's failure below is recorded with what the events before it held.
    if (r.schema) this.#setSchemaNotes(r.schema);
    this.#applied = r.applied;
    this.#skipped = r.skipped;
    // Whatever generation the report is of: a new subscription may have paused behind batches of the old one.
    this.#reader.resumeIfRoom();
    if (r.pending < 0) {
      // An advance: nothing matching lay between the old checkpoint and the new one.
      if (!this.#frozenDone() && this.#advanceCaughtUp) this.#markCaughtUp();
      return;
    }
    this.#lastBatchAt = Date.now();
    this.batchTimes.observe(r.ms);
    if (r.poison) {
      this.#fail({ message: r.poison.message, seq: r.poison.seq, type: r.poison.type, at: new Date().toISOString() });
      return;
    }
    if (r.gap !== undefined) return this.#truncated(r.gap);
    this.#restarts = 0;
    // Only when there is something to publish: a round reads (and clears) the outbox over a second
    // connection to the file, which waits for the apply thread's write lock.
    if (r.emitted > 0) this.#outbox?.kick();
    if (r.reached) {
      this.#frozenDone();
      return;
    }
    if (r.gen !== this.#reader.generation) return;
    this.#reader.adaptBatchSize(r.events, r.ms);
    this.pending = r.pending;
    if (r.pending === 0 && !this.deps.upstreamSettled) this.#markCaughtUp(); // a pipeline stage decides in #idleCheck
  }

  /** Takes the thread's notes; the ones not met before are reported (a restart's file has the old ones). */
  #setSchemaNotes(notes: SchemaNote[]): void {
    const known = new Set(this.schemaNotes.map((n) => `${n.type}\u0000${n.version}`));
    const fresh = notes.filter((n) => !known.has(`${n.type}\u0000${n.version}`));
    this.schemaNotes = notes;
    if (fresh.length > 0) this.deps.onSchemaNotes?.(fresh);
  }

  /** A frozen version that has applied everything up to its --until reads no further, ever: true once it stopped. */
  #frozenDone(): boolean {
    const until = this.record.untilSeq;
    if (until === undefined || !this.#thread || this.#checkpoint < until) return false;
    this.pending = 0;
    const sub = this.#reader.abandon(); // its close is not a failure to retry
    if (sub) setImmediate(() => void sub.stop().catch(() => {}));
    this.#markCaughtUp();
    return true;
  }

  /** Events the version has not applied are gone from its log: it fails rather than skip them. */
  #truncated(seq: number): void {
    const msg = `log truncated at ${seq}: stream ${this.deps.input.stream} no longer holds event ${seq} (deleted, purged or expired), which this version has not applied — restore the events, or replay a new version from after the gap`;
    this.#fail({ message: msg, seq, at: new Date().toISOString() });
  }

  #markCaughtUp(): void {
    if (this.caughtUp) return;
    this.caughtUp = true;
    if (this.#niced) {
      this.#thread?.foreground();
      this.#niced = false;
    }
    this.deps.onCaughtUp();
    // Live traffic goes over the main connection from now on.
    if (this.#reader.onBulk) setImmediate(() => void this.restartReading());
  }

  /** With nothing arriving, ask the log whether anything matching is left after the checkpoint. */
  async #idleCheck(): Promise<void> {
    const thread = this.#thread;
    if (this.#idleCheckRunning || this.#stopped || this.#failed || !thread || thread.outstanding > 0) return;
    if (Date.now() - this.#lastBatchAt < 200 || this.#frozenDone()) return;
    this.#idleCheckRunning = true;
    try {
      // Upstream first, then our input's head: whatever it published before settling is below that head.
      const upstreamOk = this.caughtUp || !this.deps.upstreamSettled || (await this.deps.upstreamSettled());
      const before = this.#checkpoint;
      const verdict = await idleVerdict(this.deps.jsm, this.deps.input, this.def.subjects, before, this.record.startSeq, this.record.untilSeq);
      if (verdict.kind === "busy") return;
      this.pending = 0;
      if (verdict.kind === "gap") return this.#truncated(verdict.seq);
      // Nothing matching in (before, upTo]: the checkpoint may cover it, so read-your-writes works for filtered views.
      const upTo = verdict.upTo;
      if (!this.#stopped && this.#thread === thread && this.#checkpoint === before && thread.outstanding === 0 && upTo > before && Date.now() - this.#lastBatchAt >= 200) {
        this.#advanceCaughtUp = upstreamOk;
        thread.advance(upTo, before);
        return; // caught up (or frozen) once the thread has moved the checkpoint
      }
      if (!this.#frozenDone() && upstreamOk) this.#markCaughtUp();
    } catch (err) {
      this.lastTrouble = messageOf(err);
    } finally {
      this.#idleCheckRunning = false;
    }
  }

  /** A handler that never returns: its thread is gone, the version fails with where and why. */
  #onStuck(at: ThreadPosition, ms: number): void {
    this.#thread = undefined;
    this.#fail(stuckFailure(this.name, this.#timeoutMs, at, ms));
  }

  /** A dead thread is restarted from the checkpoint; one that keeps dying at the same place fails the version. */
  async #onCrash(reason: string, at: ThreadPosition): Promise<void> {
    this.#thread = undefined;
    if (this.#stopped || this.#failed) return;
    this.#crashes = this.#checkpoint === this.#crashCheckpoint ? this.#crashes + 1 : 1;
    this.#crashCheckpoint = this.#checkpoint;
    if (this.#crashes >= MAX_CRASHES) return this.#fail(crashFailure(this.name, this.version, reason, at, this.#crashes, this.#checkpoint));
    if (at.seq !== undefined) this.#carefulUntil = at.seq;
    this.#appliedBase += this.#applied;
    this.#applied = 0;
    const msg = crashRestartLine(this.name, this.version, reason, at, this.#checkpoint);
    this.lastTrouble = msg;
    this.deps.onTrouble(msg);
    this.#reader.nextGeneration(); // batches posted to the dead thread are gone
    await this.#reader.abandon()?.stop().catch(() => {});
    await new Promise((r) => setTimeout(r, 100 * this.#crashes));
    if (this.#stopped || this.#failed) return;
    if (await this.#startThread()) await this.#subscribe();
  }

  async #retryLater(err: unknown): Promise<void> {
    if (this.#stopped || this.#failed) return;
    const msg = `${this.name} v${this.version}: ${messageOf(err)} — retrying`;
    this.lastTrouble = msg;
    this.deps.onTrouble(msg);
    const delay = Math.min(5000, 100 * 2 ** Math.min(this.#restarts++, 6));
    const gen = this.#reader.nextGeneration(); // whatever was queued behind a failed batch is dropped
    await new Promise((r) => setTimeout(r, delay));
    if (this.#stopped || this.#failed) return;
    if (!this.#thread) return this.start();
    if (gen !== this.#reader.generation) return; // someone resubscribed meanwhile
    await this.#subscribe();
  }

  #fail(f: VersionFailure): void {
    if (this.#failed) return;
    this.#failed = true;
    clearInterval(this.#idleTimer);
    void this.#reader.stop();
    void this.#thread?.terminate();
    this.deps.onFailed(f);
  }

  /** Stops reading, lets the thread apply what it was handed, and closes the view file. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#idleTimer);
    await this.#reader.stop();
    await this.#outbox?.stop();
    this.#outboxDb?.close();
    await this.#thread?.close();
  }
}
