import { HttpError } from "./errors.js";

/** Limits on what `POST /events` takes in at once. */
export interface AppendLimits {
  /** Events being published at once, over all requests (beyond it: 429). */
  maxInFlight: number;
  /** Requests being published at once (each is one atomic batch; the server holds at most 50 per stream). */
  maxRequests: number;
  /** Sustained events per second over all requests; 0 for no limit (beyond it: 429). */
  ratePerSec: number;
}

/** A refusal that tells the client when to come back. */
export class TooBusyError extends HttpError {
  constructor(code: string, message: string, readonly retryAfterSec: number, hint: string) {
    super(429, code, message, { hint });
    this.name = "TooBusyError";
  }
}

/**
 * Admission control for appends: bounded in-flight publishes and a token bucket for the rate. A request
 * that does not fit is refused at once with 429 and Retry-After instead of queueing, so a burst from
 * producers cannot grow the server's memory or the NATS client's buffer without bound.
 */
export class AppendGate {
  #events = 0;
  #requests = 0;
  #tokens: number;
  #at = Date.now();
  readonly #capacity: number;

  constructor(readonly limits: AppendLimits, maxPerRequest: number) {
    // The bucket holds a second's worth, and at least one whole request, so any valid request can pass.
    this.#capacity = Math.max(limits.ratePerSec, maxPerRequest);
    this.#tokens = this.#capacity;
  }

  /** Events and requests being published right now. */
  get inFlight(): { events: number; requests: number } {
    return { events: this.#events, requests: this.#requests };
  }

  /** Lets `n` events in, or throws TooBusyError; call the returned function when they are settled. */
  admit(n: number): () => void {
    const l = this.limits;
    if (this.#requests >= l.maxRequests || (this.#events > 0 && this.#events + n > l.maxInFlight)) {
      throw new TooBusyError("APPEND_BUSY", `the server is publishing ${this.#events} events of ${this.#requests} requests; this request of ${n} does not fit (limits ${l.maxInFlight} events, ${l.maxRequests} requests)`, 1, "retry after the Retry-After seconds with the same ids; nothing of this request was stored");
    }
    if (l.ratePerSec > 0) {
      const now = Date.now();
      this.#tokens = Math.min(this.#capacity, this.#tokens + ((now - this.#at) / 1000) * l.ratePerSec);
      this.#at = now;
      if (this.#tokens < n) {
        const wait = Math.max(1, Math.ceil((n - this.#tokens) / l.ratePerSec));
        throw new TooBusyError("RATE_LIMITED", `above the append rate of ${l.ratePerSec} events/s`, wait, "retry after the Retry-After seconds with the same ids; nothing of this request was stored");
      }
      this.#tokens -= n;
    }
    this.#events += n;
    this.#requests++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#events -= n;
      this.#requests--;
    };
  }
}

/** What `POST /events` did since the server started, for /metrics. */
export class AppendStats {
  stored = 0;
  duplicates = 0;
  /** Refused requests by error code (BAD_EVENT, RATE_LIMITED, APPEND_BUSY, NATS_UNAVAILABLE, ...). */
  readonly refused = new Map<string, number>();
  /** The gate, once the routes exist: events and requests being published now. */
  gate: AppendGate | undefined;

  refuse(code: string): void {
    this.refused.set(code, (this.refused.get(code) ?? 0) + 1);
  }
}
