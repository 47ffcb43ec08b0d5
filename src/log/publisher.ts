import { createInbox, headers as makeHeaders, type NatsConnection, type Subscription, type Msg } from "@nats-io/nats-core";
import { KappaError, UnavailableError } from "../errors.js";

/** The stream's answer to one publish. */
export interface PubResult {
  seq: number;
  duplicate: boolean;
}

interface InFlight {
  resolve: (r: PubResult) => void;
  reject: (e: Error) => void;
  subject: string;
  at: number;
}

/**
 * Publishes to JetStream with many acks in flight over one wildcard inbox subscription.
 * The stock `js.publish` builds a request (and an Error for async traces) per message and
 * tops out far below the server; this keeps a bounded window and matches acks by token.
 */
export class PipelinedPublisher {
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #sub: Subscription;
  readonly #inflight = new Map<number, InFlight>();
  readonly #window: number;
  readonly #timeoutMs: number;
  #next = 0;
  #waiters: (() => void)[] = [];
  #timer: NodeJS.Timeout;
  #closed = false;

  constructor(nc: NatsConnection, opts: { window?: number; timeoutMs?: number } = {}) {
    this.#nc = nc;
    this.#window = opts.window ?? 10_000;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#prefix = createInbox() + ".";
    this.#sub = nc.subscribe(this.#prefix + "*", { callback: (err, m) => (err ? this.#failAll(err) : this.#onAck(m)) });
    this.#timer = setInterval(() => this.#expire(), Math.min(1000, this.#timeoutMs));
    this.#timer.unref();
  }

  /** Number of publishes waiting for their ack. */
  get inFlight(): number {
    return this.#inflight.size;
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

  /** Publishes without waiting for window space; callers that bound their own window use this. */
  publishNow(subject: string, data: Uint8Array, msgId: string, extraHeaders?: Record<string, string>): Promise<PubResult> {
    if (this.#closed) return Promise.reject(new KappaError("PUBLISHER_CLOSED", "publisher is closed"));
    const token = this.#next++;
    const h = makeHeaders();
    h.set("Nats-Msg-Id", msgId);
    if (extraHeaders) for (const [k, v] of Object.entries(extraHeaders)) h.set(k, v);
    return new Promise<PubResult>((resolve, reject) => {
      this.#inflight.set(token, { resolve, reject, subject, at: Date.now() });
      try {
        this.#nc.publish(subject, data, { reply: this.#prefix + token, headers: h });
      } catch (err) {
        this.#inflight.delete(token);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
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

  #onAck(m: Msg): void {
    const token = Number(m.subject.slice(this.#prefix.length));
    const f = this.#inflight.get(token);
    if (!f) return;
    this.#settle(token);
    if (m.headers?.code === 503) {
      f.reject(new UnavailableError("NO_STREAM", `no stream stores subject ${f.subject}`, { hint: "the stream is missing: run `kappa append` against a server with the stream, or pass --stream" }));
      return;
    }
    try {
      const ack = JSON.parse(new TextDecoder().decode(m.data)) as { seq?: number; duplicate?: boolean; error?: { code: number; description: string } };
      if (ack.error) {
        f.reject(new KappaError("PUBLISH_REJECTED", `the stream refused ${f.subject}: ${ack.error.description} (${ack.error.code})`, { hint: "check the event's size and the stream's limits (`kappa log info`)" }));
      } else {
        f.resolve({ seq: ack.seq ?? 0, duplicate: ack.duplicate === true });
      }
    } catch (err) {
      f.reject(new KappaError("BAD_ACK", `unreadable ack for ${f.subject}`, { cause: err }));
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
      f.reject(new UnavailableError("PUBLISH_TIMEOUT", `no ack from JetStream within ${this.#timeoutMs} ms for ${f.subject}`, {
        hint: "NATS may be down or overloaded; re-run with the same --id or --id-field so retries are not stored twice",
      }));
    }
  }

  #failAll(err: Error): void {
    for (const [token, f] of this.#inflight) {
      this.#settle(token);
      f.reject(err);
    }
    const w = this.#waiters;
    this.#waiters = [];
    for (const r of w) r();
  }
}
