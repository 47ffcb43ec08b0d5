import { LogSubscription, DEFAULT_LIMITS, type BatchPacker, type PackedBatch, type ReadSpec } from "../log/index.js";
import type { RunnerDeps } from "./runnerDeps.js";
import type { PackedSubscription } from "./bulkReader.js";

/** Aim for batches that apply in about this long. */
const BATCH_TARGET_MS = 100;
const MIN_BATCH = 20;
/** A version starts with batches this small and doubles them while they stay fast: a slow processor's first batch must not take seconds either. */
const FIRST_BATCH = 100;
/** Pull windows: a version catching up reads in large pulls on its own connection; a caught-up one needs little. */
const BULK_PREFETCH = 10_000;
const LIVE_PREFETCH = 1000;
/**
 * A catching-up version's pull window while live versions have events: small, so its backlog never
 * stands in the NATS thread's socket ahead of a live event (bench: live p99 during a rebuild 122 ms with
 * 10,000, 37 ms with 1,000, 9 ms with 300).
 */
const SHARED_PREFETCH = 300;
/** Batches handed to the thread and not yet applied: beyond this the subscription pauses (bounded memory). */
const MAX_QUEUED = 3;

/** What the reader asks its runner. */
export interface ReaderHost {
  /** Whether the version has applied everything in the log once. */
  readonly caughtUp: boolean;
  /** Batches handed to the apply thread and not yet reported on. */
  readonly queued: number;
  /** Events are applied one per transaction for now (up to where a thread died). */
  readonly careful: boolean;
  /** A batch of the current generation. */
  onBatch(batch: PackedBatch, gen: number): void;
  /** The subscription of the current generation ended with an error. */
  onReadError(err: unknown): void;
}

/**
 * One version's reading of its log. One subscription at a time, each a new generation: batches and
 * reports of an older one are ignored, and a subscription that finishes opening after a newer one was
 * asked for is closed at once, so two consumers never feed one view. While catching up it reads on the
 * worker's bulk reader thread (its own connection, lower priority) or else the bulk connection, in large
 * pulls (small ones while live versions have events: live first); once caught up on the main connection
 * in small ones. It pauses while the apply thread holds MAX_QUEUED batches, and
 * sizes batches so one applies in about BATCH_TARGET_MS.
 */
export class VersionReader {
  #sub: PackedSubscription | undefined;
  #generation = 0;
  #onBulk = false;
  /** The batch size learned so far (kept across re-subscribes). */
  #batchEvents = FIRST_BATCH;
  /** Reading waits (live first: live events arrive later than usual) until this timer fires. */
  #hold: NodeJS.Timeout | undefined;

  constructor(private readonly deps: RunnerDeps, private readonly packer: BatchPacker, private readonly host: ReaderHost) {}

  /** The current generation: batches posted with an older one belong to a subscription that is gone. */
  get generation(): number {
    return this.#generation;
  }

  /** Whether the current subscription reads on the bulk connection (it moves to the main one at catch-up). */
  get onBulk(): boolean {
    return this.#onBulk;
  }

  /**
   * Opens a consumer at `startSeq` as a new generation, after closing the current one. Resolves false
   * when it did not open (a newer generation was asked for meanwhile, or `stillWanted` says no); an
   * error to open goes to onReadError.
   */
  async open(startSeq: number, stillWanted: () => boolean): Promise<boolean> {
    const gen = ++this.#generation;
    await this.#detach()?.stop().catch(() => {});
    let sub: PackedSubscription;
    try {
      const bulk = !this.host.caughtUp && (this.deps.bulkReader !== undefined || this.deps.bulkJs !== undefined);
      this.#onBulk = bulk;
      const spec: ReadSpec = {
        stream: this.deps.input.stream,
        prefix: this.deps.input.prefix,
        startSeq,
        prefetch: this.#prefetch,
        limits: { ...DEFAULT_LIMITS, ...this.deps.limits, maxEvents: Math.min(this.#batchEvents, this.#maxEventsCap) },
      };
      // Each subscription's first batch carries the whole type table: batches of the previous one may
      // have come from another thread's packer.
      this.packer.reset(true);
      const onBatch = (b: PackedBatch) => this.#onBatch(b, gen);
      sub = bulk && this.deps.bulkReader
        ? await this.deps.bulkReader.open(spec, this.packer, onBatch)
        : await LogSubscription.openPacked(bulk ? this.deps.bulkJs! : this.deps.js, spec, this.packer, onBatch);
    } catch (err) {
      if (gen === this.#generation) this.host.onReadError(err);
      return false;
    }
    if (gen !== this.#generation || !stillWanted()) {
      await sub.stop().catch(() => {});
      return false;
    }
    this.#sub = sub;
    if (this.host.careful) sub.setMaxEvents(1);
    if (this.host.queued >= MAX_QUEUED || this.#hold) sub.pause();
    void sub.closed.then((err) => {
      if (err && gen === this.#generation && stillWanted()) this.host.onReadError(err);
    });
    return true;
  }

  /** Starts a new generation without reading: what was queued is dropped, and the old subscription's end is no failure. Returns it, still open. */
  abandon(): PackedSubscription | undefined {
    const sub = this.#detach();
    if (sub) this.#generation++;
    return sub;
  }

  /** A new generation for a retry: batches of the current one still on their way are dropped; the subscription itself stays until the next open(). */
  nextGeneration(): number {
    return ++this.#generation;
  }

  /** Stops the current subscription (a batch being collected is handed over first). */
  async stop(): Promise<void> {
    clearTimeout(this.#hold);
    this.#hold = undefined;
    await this.#sub?.stop().catch(() => {});
  }

  /** The thread reported on a batch or an advance: reading goes on if it waited for room. */
  resumeIfRoom(): void {
    if (this.host.queued < MAX_QUEUED && !this.#hold) this.#sub?.resume();
  }

  #detach(): PackedSubscription | undefined {
    const sub = this.#sub;
    this.#sub = undefined;
    return sub;
  }

  get #maxEventsCap(): number {
    return this.deps.limits?.maxEvents ?? DEFAULT_LIMITS.maxEvents;
  }

  /** The pull window for now: small once caught up, and while catching up small only when live versions have events. */
  get #prefetch(): number {
    if (this.host.caughtUp) return LIVE_PREFETCH;
    return this.deps.liveFirst?.liveBusy ? SHARED_PREFETCH : BULK_PREFETCH;
  }

  #onBatch(batch: PackedBatch, gen: number): void {
    if (gen !== this.#generation) return;
    const live = this.deps.liveFirst;
    if (this.host.caughtUp) live?.sawLiveEvents(batch.lastStoredAt);
    else this.#sub?.setWindow(this.#prefetch);
    this.host.onBatch(batch, gen);
    if (this.host.queued >= MAX_QUEUED) this.#sub?.pause();
    const holdMs = this.host.caughtUp ? 0 : (live?.rebuildHoldMs ?? 0);
    if (holdMs > 0 && !this.#hold) {
      this.#sub?.pause();
      this.#hold = setTimeout(() => {
        this.#hold = undefined;
        this.resumeIfRoom();
      }, holdMs);
      this.#hold.unref();
    }
  }

  /**
   * Keeps one batch's apply time near BATCH_TARGET_MS: a processor that needs 1 ms per event gets
   * batches of ~100, so a stop, a poison retry or a watchdog sample never waits on seconds of work;
   * a fast one grows back to the configured cap.
   */
  adaptBatchSize(events: number, ms: number): void {
    const sub = this.#sub;
    if (!sub || events === 0 || this.host.careful) return;
    const cap = this.#maxEventsCap;
    const perEvent = ms / events;
    const ideal = perEvent > 0 ? BATCH_TARGET_MS / perEvent : cap;
    const next = Math.min(cap, Math.max(MIN_BATCH, Math.min(ideal, sub.maxEvents * 2)));
    if (Math.abs(next - sub.maxEvents) / sub.maxEvents > 0.2) sub.setMaxEvents(next);
    this.#batchEvents = Math.round(next);
  }
}
