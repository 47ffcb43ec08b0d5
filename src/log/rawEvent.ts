import type { JsMsg } from "@nats-io/jetstream";

/** One event as read from the log, before its data is parsed. */
export interface RawEvent {
  seq: number;
  type: string;
  /** ISO time the log stored the event (or the event's own time, for derived events). */
  time: string;
  id: string;
  data: Uint8Array;
  /** The schema version of its type, as the Kappa-Schema-Version header gives it (text); absent means 1. */
  schemaHeader?: string | undefined;
}

/** Header carrying an event's own time when it differs from when the log stored it (events derived by a processor). */
export const TIME_HEADER = "Kappa-Time";

/** Header carrying the schema version of an event's type (a positive integer; absent means 1). */
export const SCHEMA_HEADER = "Kappa-Schema-Version";

/**
 * A RawEvent over a JetStream message. Decoding headers is a tenth of a replay's CPU, and most processors
 * never look at the idempotency key, so `id` is read from the headers only when asked for.
 */
class MsgEvent implements RawEvent {
  #msg: JsMsg | undefined;
  #id: string | undefined;
  constructor(readonly seq: number, readonly type: string, readonly time: string, readonly data: Uint8Array, msg: JsMsg) {
    this.#msg = msg;
  }
  get id(): string {
    if (this.#id === undefined) this.#id = this.#msg?.headers?.get("Nats-Msg-Id") ?? "";
    return this.#id;
  }
  /** Read only by processors with upcasters for this type. */
  get schemaHeader(): string | undefined {
    return this.#msg?.headers?.get(SCHEMA_HEADER) || undefined;
  }
}

/** Turns messages into RawEvents, reusing the ISO time string while the millisecond stays the same. */
export class RawEventDecoder {
  #lastMs = -1;
  #lastIso = "";
  /**
   * @param prefixLength characters before the event type in a subject (`events.` = 7)
   * @param timeHeader honour Kappa-Time headers (streams of derived events only: it costs a header decode)
   */
  constructor(private readonly prefixLength: number, private readonly timeHeader: boolean) {}

  decode(m: JsMsg, timestampNanos: number): RawEvent {
    let time = this.timeHeader ? m.headers?.get(TIME_HEADER) : undefined;
    if (!time) {
      const ms = Math.floor(timestampNanos / 1e6);
      if (ms !== this.#lastMs) {
        this.#lastMs = ms;
        this.#lastIso = new Date(ms).toISOString();
      }
      time = this.#lastIso;
    }
    return new MsgEvent(m.seq, m.subject.slice(this.prefixLength), time, m.data, m);
  }
}
