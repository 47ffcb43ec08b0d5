import { createInbox, headers as makeHeaders, type NatsConnection, type Subscription, type Msg } from "@nats-io/nats-core";
import { KappaError, UnavailableError } from "../errors.js";

/** The stream's answer to one publish. */
export interface PubResult {
  seq: number;
  duplicate: boolean;
}

/** Called once per message sent with `send`: an error, or the stored sequence. */
export type PubCallback = (tag: number, err: Error | undefined, seq: number, duplicate: boolean) => void;

interface InFlight {
  tag: number;
  subject: string;
  at: number;
  /** For the Promise API: the message's own resolver (absent on the callback path). */
  settle?: (err: Error | undefined, r?: PubResult) => void;
}

const decoder = new TextDecoder();

/**
 * Publishes to JetStream with many acks in flight over one wildcard inbox subscription.
 * The stock `js.publish` builds a request (and an Error for async traces) per message and tops out
 * far below the server; this keeps a bounded window and matches acks by token. Callers that publish
 * many messages use `send` (one shared callback, no Promise per message) and publish a chunk without
 * yielding, so the client writes the whole chunk to the socket at once.
 */
export class PipelinedPublisher {
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #sub: Subscription;
  readonly #inflight = new Map<number, InFlight>();
  readonly #window: number;
  readonly #timeoutMs: number;
  readonly #onResult: PubCallback | undefined;
  #next = 0;
  #waiters: (() => void)[] = [];
  #timer: NodeJS.Timeout;
  #closed = false;

  constructor(nc: NatsConnection, opts: { window?: number; timeoutMs?: number; onResult?: PubCallback } = {}) {
    this.#nc = nc;
    this.#window = opts.window ?? 10_000;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#onResult = opts.onResult;
    this.#prefix = createInbox() + ".";
    this.#sub = nc.subscribe(this.#prefix + "*", { callback: (err, m) => (err ? this.#failAll(err) : this.#onAck(m)) });
    this.#timer = setInterval(() => this.#expire(), Math.min(1000, this.#timeoutMs));
    this.#timer.unref();
  }

  /** Number of publishes waiting for their ack. */
  get inFlight(): number {
    return this.#inflight.size;
  }

  /** The most that may be in flight before `waitForSpace` waits. */
  get window(): number {
    return this.#window;
  }

  /** Publishes one message; resolves with its stream sequence once stored. Waits first while the window is full. */
  async publish(subject: string, data: Uint8Array, msgId: string): Promise<PubResult> {
    await this.waitForSpace();
    return this.publishNow(subject, data, msgId);
  }

  /** Resolves once fewer than `window` publishes are in flight. */
  async waitForSpace(): Promise<void> {
    while (this.#inflight.size >= this.#window && !this.#closed) await new Promise<void>((r) => this.#waiters.push(r));
    if (this.#closed) throw new KappaError("PUBLISHER_CLOSED", "publisher is closed");
  }

  /** Publishes without waiting for window space, with a Promise for its ack (for a few messages at a time). */
  publishNow(subject: string, data: Uint8Array, msgId: string, extraHeaders?: Record<string, string>): Promise<PubResult> {
    return new Promise<PubResult>((resolve, reject) => {
      this.#emit(subject, data, msgId, extraHeaders, -1, (err, r) => (err ? reject(err) : resolve(r!)));
    });
  }

  /** Publishes without waiting; the result goes to the constructor's `onResult` with this `tag`. */
  send(subject: string, data: Uint8Array, msgId: string, tag: number, extraHeaders?: Record<string, string>): void {
    this.#emit(subject, data, msgId, extraHeaders, tag, undefined);
  }

  #emit(subject: string, data: Uint8Array, msgId: string, extra: Record<string, string> | undefined, tag: number, settle: InFlight["settle"]): void {
    if (this.#closed) return this.#deliver({ tag, subject, at: 0, settle }, new KappaError("PUBLISHER_CLOSED", "publisher is closed"));
    const token = this.#next++;
    const h = makeHeaders();
    h.set("Nats-Msg-Id", msgId);
    if (extra) for (const [k, v] of Object.entries(extra)) h.set(k, v);
    const f: InFlight = { tag, subject, at: Date.now(), settle };
    this.#inflight.set(token, f);
    try {
      this.#nc.publish(subject, data, { reply: this.#prefix + token, headers: h });
    } catch (err) {
      this.#settle(token);
      this.#deliver(f, err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Waits until every publish has been acknowledged or failed. */
  async drain(): Promise<void> {
    while (this.#inflight.size > 0) await new Promise<void>((r) => this.#waiters.push(r));
  }

  /** Fails whatever is in flight and unsubscribes. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#failAll(new KappaError("PUBLISHER_CLOSED", "publisher closed before the stream acknowledged"));
    this.#sub.unsubscribe();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #deliver(f: InFlight, err: Error | undefined, seq = 0, duplicate = false): void {
    if (f.settle) f.settle(err, err ? undefined : { seq, duplicate });
    else this.#onResult?.(f.tag, err, seq, duplicate);
  }

  #onAck(m: Msg): void {
    const token = Number(m.subject.slice(this.#prefix.length));
    const f = this.#inflight.get(token);
    if (!f) return;
    this.#settle(token);
    if (m.headers?.code === 503) {
      return this.#deliver(f, new UnavailableError("NO_STREAM", `no stream stores subject ${f.subject}`, { hint: "the stream is missing: run `kappa append` against a server with the stream, or pass --stream" }));
    }
    let ack: { seq?: number; duplicate?: boolean; error?: { code: number; description: string } };
    try {
      ack = JSON.parse(decoder.decode(m.data)) as typeof ack;
    } catch (err) {
      return this.#deliver(f, new KappaError("BAD_ACK", `unreadable ack for ${f.subject}`, { cause: err }));
    }
    if (ack.error) {
      this.#deliver(f, new KappaError("PUBLISH_REJECTED", `the stream refused ${f.subject}: ${ack.error.description} (${ack.error.code})`, { hint: "check the event's size and the stream's limits (`kappa log info`)" }));
    } else {
      this.#deliver(f, undefined, ack.seq ?? 0, ack.duplicate === true);
    }
  }

  #settle(token: number): void {
    this.#inflight.delete(token);
    const w = this.#waiters;
    if (w.length > 0 && this.#inflight.size < this.#window) {
      this.#waiters = [];
      for (const r of w) r();
    }
  }

  #expire(): void {
    const limit = Date.now() - this.#timeoutMs;
    for (const [token, f] of this.#inflight) {
      if (f.at > limit) break; // insertion order = publish order
      this.#settle(token);
      this.#deliver(f, new UnavailableError("PUBLISH_TIMEOUT", `no ack from JetStream within ${this.#timeoutMs} ms for ${f.subject}`, {
        hint: "NATS may be down or overloaded; re-run with the same --id or --id-field so retries are not stored twice",
      }));
    }
  }

  #failAll(err: Error): void {
    for (const [token, f] of this.#inflight) {
      this.#settle(token);
      this.#deliver(f, err);
    }
    const w = this.#waiters;
    this.#waiters = [];
    for (const r of w) r();
  }
}
