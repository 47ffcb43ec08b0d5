import type { FastifyInstance } from "fastify";
import type { ServerDeps } from "./deps.js";
import type { ViewsSnapshot } from "./snapshot.js";
import { pageFile, registerAssets } from "./assets.js";
import { StatusHistory } from "./history.js";
import { STATUS_EVENTS, STATUS_PAGE } from "./schemas.js";

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

/**
 * `GET /` (the status page), its assets, and `GET /events/status` (its live feed: `history` with the last
 * minutes of samples on connect, a `status` event whenever the snapshot changed, a `sample` every second).
 */
export function registerStatus(app: FastifyInstance, deps: ServerDeps): void {
  const feed = new StatusFeed(deps);
  const history = new StatusHistory(deps.snapshot);
  deps.onClose(() => {
    feed.stop();
    history.stop();
  });
  registerAssets(app);

  app.get("/", { schema: STATUS_PAGE }, async (_req, reply) => {
    reply.header("content-type", "text/html; charset=utf-8");
    reply.header("cache-control", "no-store");
    reply.header("content-security-policy", "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:");
    return pageFile("status.html");
  });

  app.get("/events/status", { schema: STATUS_EVENTS }, async (_req, reply) => {
    const stream = deps.hub.open(reply);
    stream.send("history", { samples: history.samples() });
    stream.onClose(feed.subscribe((s) => stream.send("status", s)));
    stream.onClose(history.subscribe((s) => stream.send("sample", s)));
  });
}
