import { DeliverPolicy, type JetStreamClient, type JsMsg, type ConsumerMessages } from "@nats-io/jetstream";
import { KappaError, messageOf } from "../errors.js";
import { wrapJsError } from "./stream.js";
import { RawEventDecoder, type RawEvent } from "./rawEvent.js";
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

/**
 * Follows the log with an ordered consumer and hands over batches synchronously.
 * The handler runs inside the client's callback, so while it works no more messages
 * are pulled: memory is bounded by the pull window plus one batch.
 */
export class LogSubscription {
  readonly #msgs: ConsumerMessages;
  readonly #limits: BatchLimits;
  readonly #decoder: RawEventDecoder;
  readonly #prefixDot: string;
  #skipped: number[] = [];
  #events: RawEvent[] = [];
  #bytes = 0;
  #pending = 0;
  #timer: NodeJS.Timeout | undefined;
  #failure: Error | undefined;
  readonly #done: Promise<Error | undefined>;
  #stopped = false;

  private constructor(msgs: ConsumerMessages, limits: BatchLimits, prefix: string, timeHeader: boolean, private readonly handler: (b: LogBatch) => void) {
    this.#msgs = msgs;
    this.#limits = limits;
    this.#decoder = new RawEventDecoder(prefix.length + 1, timeHeader);
    this.#prefixDot = prefix + ".";
    this.#done = msgs.closed().then(
      (e) => this.#failure ?? (e instanceof Error ? e : undefined),
      (e: unknown) => this.#failure ?? (e instanceof Error ? e : new Error(String(e))),
    );
  }

  /** Opens an ordered consumer at the spec's start and calls `handler` for each batch. */
  static async open(js: JetStreamClient, spec: ReadSpec, handler: (b: LogBatch) => void): Promise<LogSubscription> {
    const limits = { ...DEFAULT_LIMITS, ...spec.limits };
    let consumer;
    try {
      // No server-side filter: nats-server 2.9 delivers a filtered consumer that starts at a sequence
      // (as every ordered consumer does after a reset) at a few hundred events per second. Readers filter
      // event types themselves; the stream holds only this prefix's subjects.
      consumer = await js.consumers.get(spec.stream, startOptions(spec));
    } catch (err) {
      throw wrapJsError(err, spec.stream);
    }
    let sub: LogSubscription | undefined;
    const pendingMsgs: JsMsg[] = [];
    const msgs = await consumer.consume({
      max_messages: spec.prefetch ?? Math.max(1000, Math.min(10_000, limits.maxEvents * 2)),
      expires: 5000,
      callback: (m) => {
        if (sub) sub.#onMessage(m);
        else pendingMsgs.push(m);
      },
    });
    sub = new LogSubscription(msgs, limits, spec.prefix, spec.timeHeader === true, handler);
    const self = sub;
    watchForStall(msgs, (err) => self.#fail(err));
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
      // Writer fences share a derived stream with its events but are no events.
      if (!m.subject.startsWith(this.#prefixDot)) {
        this.#skipped.push(m.seq);
        this.#pending = info.pending;
        if (info.pending === 0) this.#flush();
        return;
      }
      const ev = this.#decoder.decode(m, info.timestampNanos);
      this.#events.push(ev);
      this.#bytes += ev.data.length;
      this.#pending = info.pending;
      const l = this.#limits;
      // The time cap is the timer's job: no clock read per message.
      if (info.pending === 0 || this.#events.length >= l.maxEvents || this.#bytes >= l.maxBytes) {
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
    if (this.#events.length === 0 || this.#stopped) return;
    const events = this.#events;
    const lastSeq = events[events.length - 1]!.seq;
    const batch: LogBatch = { events, bytes: this.#bytes, lastSeq, pending: this.#pending };
    if (this.#skipped.length > 0) {
      // Skipped sequences after the last event belong to the next batch: they lie beyond this checkpoint.
      batch.skipped = this.#skipped.filter((q) => q < lastSeq);
      this.#skipped = this.#skipped.filter((q) => q > lastSeq);
    }
    this.#events = [];
    this.#bytes = 0;
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
