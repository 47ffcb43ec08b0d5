import type { FastifyInstance } from "fastify";
import type { ServerDeps } from "./deps.js";
import type { ViewsSnapshot } from "./snapshot.js";
import { STATUS_PAGE } from "./statusPage.js";

/** Snapshots every view at a fixed interval while someone watches, and tells them when anything changed. */
class StatusFeed {
  readonly #subscribers = new Set<(s: ViewsSnapshot) => void>();
  #timer: NodeJS.Timeout | undefined;
  #last = "";
  #current: ViewsSnapshot | undefined;

  constructor(private readonly deps: ServerDeps) {}

  #tick(): void {
    const s = this.deps.snapshot();
    const key = JSON.stringify({ ...s, at: undefined });
    if (key === this.#last) return;
    this.#last = key;
    this.#current = s;
    for (const fn of this.#subscribers) fn(s);
  }

  subscribe(fn: (s: ViewsSnapshot) => void): () => void {
    if (!this.#timer) {
      this.#tick();
      this.#timer = setInterval(() => this.#tick(), this.deps.statusIntervalMs);
    }
    this.#subscribers.add(fn);
    fn(this.#current ?? this.deps.snapshot());
    return () => {
      this.#subscribers.delete(fn);
      if (this.#subscribers.size === 0) this.stop();
    };
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#last = "";
  }
}

/** `GET /` (the status page) and `GET /events/status` (its live feed: a `status` event whenever the snapshot changed). */
export function registerStatus(app: FastifyInstance, deps: ServerDeps): void {
  const feed = new StatusFeed(deps);
  deps.onClose(() => feed.stop());

  app.get("/", async (_req, reply) => {
    reply.header("content-type", "text/html; charset=utf-8");
    reply.header("cache-control", "no-store");
    reply.header("content-security-policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'");
    return STATUS_PAGE;
  });

  app.get("/events/status", async (_req, reply) => {
    const stream = deps.hub.open(reply);
    stream.onClose(feed.subscribe((s) => stream.send("status", s)));
  });
}
