import { DeliverPolicy, type JetStreamClient, type JsMsg, type ConsumerMessages } from "@nats-io/jetstream";
import { KappaError, messageOf } from "../errors.js";
import { wrapJsError } from "./stream.js";
import type { RawEvent } from "./rawEvent.js";
import type { BatchPacker, PackedBatch } from "./packed.js";
import { EventCollector, PackedCollector, type Collector } from "./collectors.js";
import { watchForStall } from "./stall.js";

export type { RawEvent } from "./rawEvent.js";

/** A run of consecutive events; `pending` is how many matching events the log still held after the last one. */
export interface LogBatch {
  events: RawEvent[];
  bytes: number;
  lastSeq: number;
  pending: number;
  /** Sequences read but not handed over (writer fences in a derived stream): no gap, although no event. */
  skipped?: number[];
}

/** Caps on one batch: whichever is reached first closes it. */
export interface BatchLimits {
  maxEvents: number;
  maxBytes: number;
  /** A partially filled batch is handed over after this many ms. */
  maxMs: number;
}

export const DEFAULT_LIMITS: BatchLimits = { maxEvents: 5000, maxBytes: 8 * 1024 * 1024, maxMs: 50 };

/** What to read: where to start and which event types. */
export interface ReadSpec {
  stream: string;
  prefix: string;
  /** First sequence to deliver (≥ 1); omitted = everything. Times are resolved to a sequence first (firstSeqAtOrAfter). */
  startSeq?: number;
  limits?: Partial<BatchLimits>;
  /**
   * Messages the client may hold ahead of the handler (JetStream pull size). The client hands a whole
   * socket read to the handler in one go, so a slow handler wants a small prefetch to yield the thread often.
   */
  prefetch?: number;
  /** Events carry their own time in a Kappa-Time header (streams of derived events). */
  timeHeader?: boolean;
}

/** What the client does to ask the server for more messages (patched to pause a subscription). */
interface Pullable {
  pull?: (opts: { batch?: number }) => void;
  pullOptions?: () => { batch?: number };
  /** The consume() options; pullOptions() reads max_messages from here on every pull. */
  opts?: { max_messages?: number };
}

/**
 * Follows the log with an ordered consumer and hands over batches synchronously.
 * With decoded batches the handler runs inside the client's callback, so while it works no more messages
 * are pulled. With packed batches the handler only passes the bytes on; the caller bounds memory with
 * pause(): no new pull requests go out, so at most one pull window more arrives.
 */
export class LogSubscription<B = LogBatch> {
  readonly #msgs: ConsumerMessages;
  readonly #limits: BatchLimits;
  readonly #collector: Collector<B>;
  #pending = 0;
  #timer: NodeJS.Timeout | undefined;
  #failure: Error | undefined;
  readonly #done: Promise<Error | undefined>;
  #stopped = false;
  #paused = false;
  #resumedAt = 0;
  #deferredPull = false;
  /** After setWindow(): pulls asking for fewer messages than this are held back (no pull per message). */
  #minPull = 0;

  readonly #prefixDot: string;

  private constructor(msgs: ConsumerMessages, limits: BatchLimits, prefix: string, collector: Collector<B>, private readonly handler: (b: B) => void) {
    this.#msgs = msgs;
    this.#prefixDot = prefix + ".";
    this.#limits = limits;
    this.#collector = collector;
    this.#done = msgs.closed().then(
      (e) => this.#failure ?? (e instanceof Error ? e : undefined),
      (e: unknown) => this.#failure ?? (e instanceof Error ? e : new Error(String(e))),
    );
    this.#gatePulls();
  }

  /** Opens an ordered consumer at the spec's start and calls `handler` for each batch of decoded events. */
  static open(js: JetStreamClient, spec: ReadSpec, handler: (b: LogBatch) => void): Promise<LogSubscription<LogBatch>> {
    return LogSubscription.#open(js, spec, new EventCollector(spec.prefix, spec.timeHeader === true), handler);
  }

  /**
   * The same, with each batch as raw bytes in one transferable buffer (for an apply thread: see packed.ts).
   * The packer outlives subscriptions, so its type table stays the one the apply thread holds.
   */
  static openPacked(js: JetStreamClient, spec: ReadSpec, packer: BatchPacker, handler: (b: PackedBatch) => void): Promise<LogSubscription<PackedBatch>> {
    return LogSubscription.#open(js, spec, new PackedCollector(packer), handler);
  }

  static async #open<T>(js: JetStreamClient, spec: ReadSpec, collector: Collector<T>, handler: (b: T) => void): Promise<LogSubscription<T>> {
    const limits = { ...DEFAULT_LIMITS, ...spec.limits };
    let consumer;
    try {
      // No server-side filter, on purpose (no longer for nats-server 2.9's slow filtered consumers): the runner
      // proves the log has no hole by seeing every sequence arrive (firstGap), which a filtered consumer would
      // hide. Readers filter event types themselves. bench/RESULTS.md has what a server-side filter would gain.
      consumer = await js.consumers.get(spec.stream, startOptions(spec));
    } catch (err) {
      throw wrapJsError(err, spec.stream);
    }
    let sub: LogSubscription<T> | undefined;
    const pendingMsgs: JsMsg[] = [];
    const msgs = await consumer.consume({
      max_messages: spec.prefetch ?? Math.max(1000, Math.min(10_000, limits.maxEvents * 2)),
      expires: 5000,
      callback: (m) => {
        if (sub) sub.#onMessage(m);
        else pendingMsgs.push(m);
      },
    });
    sub = new LogSubscription<T>(msgs, limits, spec.prefix, collector, handler);
    const self = sub;
    // While paused the server sends nothing, heartbeats included: those misses are ours, not a dead server.
    watchForStall(msgs, (err) => {
      if (!self.#paused && performance.now() - self.#resumedAt > 1000) self.#fail(err);
    });
    for (const m of pendingMsgs) sub.#onMessage(m);
    return sub;
  }

  /** Resolves when the subscription ends: undefined when stopped, the error when it failed. */
  get closed(): Promise<Error | undefined> {
    return this.#done;
  }

  /** Changes the event cap of the batches to come (a slow processor gets smaller batches, so it never blocks for long). */
  setMaxEvents(n: number): void {
    this.#limits.maxEvents = Math.max(1, Math.floor(n));
  }

  /** The current cap on events per batch. */
  get maxEvents(): number {
    return this.#limits.maxEvents;
  }

  /**
   * Changes the pull window (the messages asked for ahead of the handler) from the next pull on. The
   * client's own re-pull threshold was fixed at open, so a pull for less than half the window waits until
   * more has arrived (no pull request per message).
   */
  setWindow(n: number): void {
    const p = this.#msgs as unknown as Pullable;
    if (!p.opts || p.opts.max_messages === n) return;
    p.opts.max_messages = n;
    this.#minPull = Math.max(1, Math.floor(n / 2));
  }

  /** Sends no more pull requests until resume(): what was already asked for still arrives. */
  pause(): void {
    this.#paused = true;
  }

  /** Lets pull requests go out again, sending the one held back. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#resumedAt = performance.now();
    if (this.#deferredPull && !this.#stopped) {
      this.#deferredPull = false;
      const p = this.#msgs as unknown as Pullable;
      if (p.pull && p.pullOptions) p.pull(p.pullOptions());
    }
  }

  /**
   * The client asks for more whenever its window runs low (and after resets or missed heartbeats), all
   * through one method; holding that call back while paused is the only flow control consume() allows.
   */
  #gatePulls(): void {
    const p = this.#msgs as unknown as Pullable;
    const pull = p.pull;
    if (typeof pull !== "function" || typeof p.pullOptions !== "function") return;
    p.pull = (opts) => {
      if ((opts.batch ?? Infinity) < this.#minPull) return; // asked again once more has arrived
      if (this.#paused) this.#deferredPull = true;
      else pull.call(p, opts);
    };
  }

  /** Stops reading; a batch being collected is handed over first. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#flush();
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#msgs.stop();
    await this.#done;
  }

  #onMessage(m: JsMsg): void {
    if (this.#stopped) return;
    try {
      const info = m.info;
      const c = this.#collector;
      // Writer fences share a derived stream with its events but are no events.
      if (!m.subject.startsWith(this.#prefixDot)) {
        c.skip(info.streamSequence);
        this.#pending = info.pending;
        if (info.pending === 0) this.#flush();
        return;
      }
      c.add(m, info.streamSequence, info.timestampNanos);
      this.#pending = info.pending;
      const l = this.#limits;
      // The time cap is the timer's job: no clock read per message.
      if (info.pending === 0 || c.count >= l.maxEvents || c.bytes >= l.maxBytes) {
        this.#flush();
      } else if (!this.#timer) {
        this.#timer = setTimeout(() => this.#flush(), l.maxMs);
      }
    } catch (err) {
      this.#fail(err);
    }
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#collector.count === 0 || this.#stopped) return;
    const batch = this.#collector.take(this.#pending);
    try {
      this.handler(batch);
    } catch (err) {
      this.#fail(err);
    }
  }

  #fail(err: unknown): void {
    this.#failure = err instanceof Error ? err : new KappaError("READ_FAILED", messageOf(err));
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#msgs.stop();
  }
}

/** The ordered consumer's start for a read spec. */
export function startOptions(spec: ReadSpec): { deliver_policy: DeliverPolicy; opt_start_seq?: number } {
  if (spec.startSeq !== undefined && spec.startSeq > 1) return { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: spec.startSeq };
  return { deliver_policy: DeliverPolicy.All };
}
