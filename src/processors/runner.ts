import { existsSync } from "node:fs";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { messageOf } from "../errors.js";
import { LogSubscription, nextMatchingSeq, logIdentity, firstGap, firstMissingSeq, DEFAULT_LIMITS, type BatchLimits, type LogBatch } from "../log/index.js";

/** Aim for batches that apply in about this long. */
const BATCH_TARGET_MS = 100;
const MIN_BATCH = 20;
/** A version starts with batches this small and doubles them while they stay fast: a slow processor's first batch must not hold the thread for seconds either. */
const FIRST_BATCH = 100;
const FIRST_PREFETCH = 1000;
const MIN_PREFETCH = 100;
const MAX_PREFETCH = 10_000;
import { ViewWriter, type VersionRecord, type VersionFailure, type DataDir } from "../views/index.js";
import type { ProcessorDefinition } from "./define.js";
import { BatchApplier, isTransientSqliteError } from "./apply.js";
import { OutboxPublisher, type OutboxGate } from "./outbox.js";
import { DurationHistogram } from "./histogram.js";
import { clipToUntil } from "./frozen.js";

/** Where a version reads from: the main log, or an upstream version's output (pipelines). */
export interface InputSpec {
  stream: string;
  prefix: string;
}

/** What a runner needs from its surroundings. */
export interface RunnerDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  dataDir: DataDir;
  input: InputSpec;
  /** Where ctx.emit output goes (stream and subject prefix); emits stay in the outbox when absent. */
  output?: InputSpec;
  /** Publishes the outbox only while this worker is the version's fenced writer; absent: always. */
  gate?: OutboxGate;
  /** Seeds a missing view file from a snapshot; resolves to the snapshot's checkpoint, or null when there is none. */
  restore?: (viewFile: string) => Promise<number | null>;
  limits?: Partial<BatchLimits>;
  /** How long a write waits for a SQLite lock before it counts as a transient failure (default 5000 ms). */
  busyTimeoutMs?: number;
  /** For a pipeline stage: whether the upstream version has caught up and published every emit; the stage is caught up only then. */
  upstreamSettled?: () => boolean | Promise<boolean>;
  /** Called once, the first time the version has applied everything in the log. */
  onCaughtUp: () => void;
  /** Called when the version cannot go on (a poison event under "halt", a failed migration). */
  onFailed: (f: VersionFailure) => void;
  /** Transient trouble (NATS, SQLite busy): reported, then retried. */
  onTrouble: (message: string) => void;
}

/** Keeps one view version current: resumes from its checkpoint, applies batches, detects catch-up, restarts after transient failures. */
export class VersionRunner {
  readonly name: string;
  readonly version: number;
  #writer: ViewWriter | undefined;
  #applier: BatchApplier | undefined;
  #sub: LogSubscription | undefined;
  #outbox: OutboxPublisher | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  #failed = false;
  #lastBatchAt = 0;
  #idleCheckRunning = false;
  #restarts = 0;
  /** Matching events known to be still unread (0 once caught up). */
  pending = 0;
  caughtUp = false;
  /** The checkpoint of the snapshot this replica started from, when it joined from one. */
  restoredFrom: number | undefined;
  lastTrouble: string | undefined;
  // Starts small like the batches: everything pulled sits ahead of the worker's other NATS replies on
  // the one connection, so 10,000 events of a slow processor would hold up its stats for seconds.
  // The first batch's timing raises it at once for a fast processor.
  #prefetch = FIRST_PREFETCH;
  /** The batch size learned so far (kept across re-subscribes). */
  #batchEvents = FIRST_BATCH;
  #generation = 0;
  #prefetchChangedAt = 0;
  /** How long applying each batch took. */
  readonly batchTimes = new DurationHistogram();

  constructor(readonly record: VersionRecord, readonly def: ProcessorDefinition, private readonly deps: RunnerDeps) {
    this.name = def.name;
    this.version = record.version;
  }

  /** The stream this version reads (the main log, or an upstream version's output). */
  get inputStream(): string {
    return this.deps.input.stream;
  }

  /** Last applied sequence. */
  get checkpoint(): number {
    return this.#writer?.checkpoint ?? 0;
  }

  /** Events applied since this runner started. */
  get applied(): number {
    return this.#applier?.applied ?? 0;
  }

  get skipped(): number {
    return this.#applier?.skipped ?? 0;
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
    return this.#writer?.walBytes() ?? 0;
  }

  get failed(): boolean {
    return this.#failed;
  }

  /** Opens the view file (running migrations) and starts following the log. */
  async start(): Promise<void> {
    let log: string;
    try {
      log = await logIdentity(this.deps.jsm, this.deps.input.stream);
    } catch (err) {
      return this.#retryLater(err);
    }
    if (this.#stopped) return;
    const file = this.deps.dataDir.viewFile(this.name, this.version);
    if (this.deps.restore && !existsSync(file)) {
      try {
        this.restoredFrom = (await this.deps.restore(file)) ?? undefined;
      } catch (err) {
        this.deps.onTrouble(`${this.name} v${this.version}: no snapshot restored (${messageOf(err)}) — replaying the whole log`);
      }
      if (this.#stopped) return;
    }
    try {
      // A file belongs to one log and one catalog entry: one left by another stream or a wiped store is rebuilt.
      const id = { processor: this.name, version: this.version, codeHash: this.record.codeHash, log, entry: this.record.createdAt };
      this.#writer = ViewWriter.open(this.deps.dataDir.viewFile(this.name, this.version), id, this.def.schema, { busyTimeoutMs: this.deps.busyTimeoutMs });
      if (this.#writer.replaced) this.deps.onTrouble(`${this.name} v${this.version}: ${this.#writer.replaced}`);
    } catch (err) {
      if (isTransientSqliteError(err) || (err as { code?: string }).code === "VIEW_OPEN_FAILED") return this.#retryLater(err);
      return this.#fail({ message: messageOf(err), at: new Date().toISOString() });
    }
    this.#applier = new BatchApplier(this.#writer, this.def, this.version);
    if (this.deps.output) {
      this.#outbox = new OutboxPublisher(this.#writer.db, this.deps.nc, this.deps.output, `${this.name}:${this.version}`, this.deps.onTrouble, this.deps.gate);
      this.#outbox.kick();
    }
    await this.#subscribe();
    if (this.#stopped || this.#failed) return;
    this.#idleTimer = setInterval(() => void this.#idleCheck(), 250);
    this.#idleTimer.unref();
  }

  /**
   * Opens a consumer at the checkpoint. Every call starts a new generation: a subscription that finishes
   * opening after a newer call, or after stop(), is closed at once, so two consumers never feed one view.
   */
  async #subscribe(): Promise<void> {
    if (this.#stopped || this.#failed) return;
    const gen = ++this.#generation;
    const old = this.#sub;
    this.#sub = undefined;
    await old?.stop().catch(() => {});
    if (this.#frozenDone()) return;
    const cp = this.#writer!.checkpoint;
    const startSeq = Math.max(cp + 1, this.record.startSeq ?? 1);
    let sub: LogSubscription;
    try {
      sub = await LogSubscription.open(this.deps.js, {
        stream: this.deps.input.stream,
        prefix: this.deps.input.prefix,
        startSeq,
        timeHeader: this.record.source !== undefined,
        limits: { ...DEFAULT_LIMITS, ...this.deps.limits, maxEvents: Math.min(this.#batchEvents, this.deps.limits?.maxEvents ?? DEFAULT_LIMITS.maxEvents) },
        prefetch: this.#prefetch,
      }, (b) => this.#onBatch(b));
    } catch (err) {
      if (gen === this.#generation) void this.#retryLater(err);
      return;
    }
    if (gen !== this.#generation || this.#stopped || this.#failed) {
      await sub.stop().catch(() => {});
      return;
    }
    this.#sub = sub;
    void sub.closed.then((err) => {
      if (err && gen === this.#generation && !this.#stopped && !this.#failed) void this.#retryLater(err);
    });
  }

  /** Drops the current consumer and reads again from the checkpoint (after a reconnect, say), instead of waiting for missed heartbeats. */
  async restartReading(): Promise<void> {
    if (this.#stopped || this.#failed || !this.#writer) return;
    await this.#subscribe();
  }

  #onBatch(batch: LogBatch): void {
    this.#lastBatchAt = Date.now();
    const until = this.record.untilSeq;
    if (until !== undefined && this.#writer!.checkpoint >= until) return; // frozen: a batch still in flight after the stop
    const missing = firstGap(batch.events, Math.max(this.#writer!.checkpoint + 1, this.record.startSeq ?? 1), batch.skipped);
    if (missing !== null) {
      this.#truncated(missing);
      throw new Error("halted");
    }
    const clipped = clipToUntil(batch, until);
    const t0 = performance.now();
    const poison = this.#applier!.apply(clipped.events);
    const took = performance.now() - t0;
    this.batchTimes.observe(took);
    this.#adaptBatchSize(clipped.events.length, took);
    if (poison) {
      this.#fail({ message: poison.message, seq: poison.event.seq, type: poison.event.type, at: new Date().toISOString() });
      throw new Error("halted");
    }
    this.#restarts = 0;
    this.pending = clipped.pending;
    if (clipped.reached) {
      if (this.#writer!.checkpoint < until!) this.#writer!.commit(until!, () => {});
      this.#frozenDone();
    } else if (clipped.pending === 0 && !this.deps.upstreamSettled) this.#markCaughtUp(); // a pipeline stage decides in #idleCheck
    this.#outbox?.kick();
  }

  /** A frozen version that has applied everything up to its --until reads no further, ever: true once it stopped. */
  #frozenDone(): boolean {
    const until = this.record.untilSeq;
    if (until === undefined || !this.#writer || this.#writer.checkpoint < until) return false;
    this.pending = 0;
    const sub = this.#sub;
    if (sub) {
      this.#sub = undefined;
      this.#generation++; // its close is not a failure to retry
      setImmediate(() => void sub.stop().catch(() => {}));
    }
    this.#markCaughtUp();
    return true;
  }

  /**
   * Keeps one batch's apply time near BATCH_TARGET_MS: a processor that needs 1 ms per event gets
   * batches of ~100, so it never holds the thread (and the live versions beside it) for seconds;
   * a fast one grows back to the configured cap.
   */
  #adaptBatchSize(events: number, ms: number): void {
    const sub = this.#sub;
    if (!sub || events === 0) return;
    const cap = this.deps.limits?.maxEvents ?? DEFAULT_LIMITS.maxEvents;
    const perEvent = ms / events;
    const ideal = perEvent > 0 ? BATCH_TARGET_MS / perEvent : cap;
    const next = Math.min(cap, Math.max(MIN_BATCH, Math.min(ideal, sub.maxEvents * 2)));
    if (Math.abs(next - sub.maxEvents) / sub.maxEvents > 0.2) sub.setMaxEvents(next);
    this.#batchEvents = Math.round(next);
    // The pull size bounds how much the client hands over in one go: re-pull with a better one when far off.
    const wanted = Math.min(MAX_PREFETCH, Math.max(MIN_PREFETCH, Math.round(2 * ideal)));
    const ratio = wanted / this.#prefetch;
    if ((ratio > 2 || ratio < 0.5) && Date.now() - this.#prefetchChangedAt > 1000) {
      this.#prefetch = wanted;
      this.#prefetchChangedAt = Date.now();
      setImmediate(() => void this.restartReading());
    }
  }

  #markCaughtUp(): void {
    if (this.caughtUp) return;
    this.caughtUp = true;
    this.deps.onCaughtUp();
  }

  /** With nothing arriving, ask the log whether anything matching is left after the checkpoint. */
  async #idleCheck(): Promise<void> {
    if (this.#idleCheckRunning || this.#stopped || this.#failed || !this.#writer) return;
    if (Date.now() - this.#lastBatchAt < 200 || this.#frozenDone()) return;
    this.#idleCheckRunning = true;
    try {
      // Upstream first, then our input's head: whatever it published before settling is below that head.
      const upstreamOk = this.caughtUp || !this.deps.upstreamSettled || (await this.deps.upstreamSettled());
      const before = this.#writer.checkpoint;
      const state = (await this.deps.jsm.streams.info(this.deps.input.stream)).state;
      const head = state.last_seq;
      // A version that starts later in the log owes nothing before its start.
      const from = Math.max(before, (this.record.startSeq ?? 1) - 1);
      const next = await nextMatchingSeq(this.deps.jsm, this.deps.input.stream, this.deps.input.prefix, this.def.subjects?.length === 1 ? this.def.subjects[0] : undefined, from);
      const until = this.record.untilSeq ?? Infinity;
      if (next !== null && next <= until) return;
      this.pending = 0;
      // Nothing matching in (before, head]: the checkpoint may cover it, so read-your-writes works for filtered views.
      const upTo = Math.min(head, until);
      // Nothing to read, but the head is further on: those events must exist (a filter skips them), never be gone.
      const missing = await firstMissingSeq(this.deps.jsm, this.deps.input.stream, state, from, upTo);
      if (missing !== null) return this.#truncated(missing);
      if (!this.#stopped && this.#writer.checkpoint === before && upTo > before && Date.now() - this.#lastBatchAt >= 200) {
        this.#writer.commit(upTo, () => {});
      }
      if (!this.#frozenDone() && upstreamOk) this.#markCaughtUp();
    } catch (err) {
      this.lastTrouble = messageOf(err);
    } finally {
      this.#idleCheckRunning = false;
    }
  }

  async #retryLater(err: unknown): Promise<void> {
    if (this.#stopped || this.#failed) return;
    const msg = `${this.name} v${this.version}: ${messageOf(err)} — retrying`;
    this.lastTrouble = msg;
    this.deps.onTrouble(msg);
    const delay = Math.min(5000, 100 * 2 ** Math.min(this.#restarts++, 6));
    const gen = this.#generation;
    await new Promise((r) => setTimeout(r, delay));
    if (this.#stopped || this.#failed) return;
    if (!this.#writer) return this.start();
    if (gen !== this.#generation) return; // someone resubscribed meanwhile
    await this.#subscribe();
  }

  /** Events the version has not applied are gone from its log: it fails rather than skip them. */
  #truncated(seq: number): void {
    const msg = `log truncated at ${seq}: stream ${this.deps.input.stream} no longer holds event ${seq} (deleted, purged or expired), which this version has not applied — restore the events, or replay a new version from after the gap`;
    this.#fail({ message: msg, seq, at: new Date().toISOString() });
  }

  #fail(f: VersionFailure): void {
    if (this.#failed) return;
    this.#failed = true;
    clearInterval(this.#idleTimer);
    void this.#sub?.stop();
    this.deps.onFailed(f);
  }

  /** Stops reading and closes the view file. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#idleTimer);
    await this.#sub?.stop().catch(() => {});
    await this.#outbox?.stop();
    this.#writer?.close();
  }
}
