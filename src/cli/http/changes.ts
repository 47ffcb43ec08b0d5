import type { FastifyInstance } from "fastify";
import { NotFoundError, messageOf } from "../../errors.js";
import { queryView, validateProcessorName } from "../../views/index.js";
import type { ServerDeps } from "./deps.js";
import { CHANGES } from "./schemas.js";
import { bodyOf } from "./errors.js";
import { queryStringParams } from "./params.js";
import type { SseStream } from "./sse.js";

/** A change stream's named-query re-run sends at most this many rows (cut, `truncated: true`): each commit may send them all again. */
const STREAM_ROWS = 10_000;

/** What a change feed reports: the live version moved (`live`) or committed a batch (`commit`). */
export type ChangeEvent = { kind: "live"; version: number | null; previous: number | null; seq: number | null } | { kind: "commit"; version: number; seq: number };

/**
 * Follows one processor's live version: polls its checkpoint (a prepared statement on a read-only
 * handle, so it works when the worker runs in another process) and notices promotions and rollbacks.
 * One feed per processor, shared by every client that watches it; it stops when the last one leaves.
 */
class ChangeFeed {
  readonly #subscribers = new Set<(e: ChangeEvent) => void>();
  readonly #timer: NodeJS.Timeout;
  live: number | null = null;
  seq: number | null = null;

  constructor(private readonly name: string, private readonly deps: ServerDeps) {
    this.#read();
    this.#timer = setInterval(() => this.#tick(), deps.pollMs);
  }

  #read(): void {
    this.live = this.deps.catalog.get(this.name)?.live ?? null;
    this.seq = this.live === null ? null : this.deps.checkpoints.read(this.deps.ctx.dataDir, this.name, this.live);
  }

  #tick(): void {
    const before = { live: this.live, seq: this.seq };
    this.#read();
    if (this.live !== before.live) this.#emit({ kind: "live", version: this.live, previous: before.live, seq: this.seq });
    else if (this.live !== null && this.seq !== null && this.seq !== before.seq) this.#emit({ kind: "commit", version: this.live, seq: this.seq });
  }

  #emit(e: ChangeEvent): void {
    for (const fn of this.#subscribers) fn(e);
  }

  subscribe(fn: (e: ChangeEvent) => void): () => boolean {
    this.#subscribers.add(fn);
    return () => {
      this.#subscribers.delete(fn);
      return this.#subscribers.size === 0;
    };
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/**
 * Re-runs a named query after changes (one run at a time per stream, coalescing bursts) and sends its result
 * when it differs from the last one sent. Re-runs of all streams share a small number of slots, so a burst of
 * commits with many dashboards open cannot fill the query queue; a stream that finds no slot tries again shortly.
 */
function resultFollower(stream: SseStream, deps: ServerDeps, processor: string, name: string, params: Record<string, unknown>): () => void {
  let running = false;
  let again = false;
  let retry: NodeJS.Timeout | undefined;
  let last: string | undefined;
  stream.onClose(() => clearTimeout(retry));
  const later = () => {
    retry ??= setTimeout(() => {
      retry = undefined;
      kick();
    }, Math.max(50, deps.pollMs * 2));
  };
  const run = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    const release = deps.streams.followQueries.tryAcquire();
    if (!release) return later();
    running = true;
    try {
      do {
        again = false;
        try {
          const a = await queryView(deps.ctx.dataDir, deps.catalog.records, deps.pool, { processor, sql: name, params, timeoutMs: deps.limits.defaultTimeoutMs, limit: Math.min(STREAM_ROWS, deps.limits.maxRows), maxRows: deps.limits.maxRows, maxBytes: deps.limits.maxBytes });
          const key = JSON.stringify([a.rows, a.truncated]);
          if (key !== last) {
            last = key;
            stream.send("result", { query: name, version: a.version, seq: a.seq, columns: a.columns, rows: a.rows, truncated: a.truncated });
          }
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code === "QUERY_BUSY") later();
          else if (code !== "NO_LIVE_VERSION") stream.send("error", bodyOf(err));
        }
      } while (again && !stream.closed);
    } finally {
      running = false;
      release();
    }
  };
  const kick = () => void run().catch((err: unknown) => stream.send("error", { error: "INTERNAL", message: messageOf(err) }));
  return kick;
}

/** `GET /views/:processor/changes[?query=<name>&param=...]`: a commit event per batch the live version commits, `live` on promotions, and the named query's result whenever it changes. */
export function registerChanges(app: FastifyInstance, deps: ServerDeps): void {
  const feeds = new Map<string, ChangeFeed>();
  deps.onClose(() => {
    for (const f of feeds.values()) f.stop();
    feeds.clear();
  });

  app.get<{ Params: { processor: string }; Querystring: Record<string, unknown> }>("/views/:processor/changes", { schema: CHANGES }, async (req, reply) => {
    const processor = validateProcessorName(req.params.processor);
    const rec = await deps.catalog.records(processor);
    if (!rec) throw new NotFoundError(`processor ${processor} is not deployed`, { hint: "`GET /views` lists what exists" });
    const query = req.query.query;
    let follow: (() => void) | undefined;
    let params: Record<string, unknown> = {};
    if (query !== undefined) {
      if (typeof query !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(query)) throw new NotFoundError(`query must name one of ${processor}'s named queries`, { hint: "see `GET /views/" + processor + "`" });
      const named = rec.versions[String(rec.live ?? "")]?.queries ?? Object.values(rec.versions).at(-1)?.queries ?? {};
      if (named[query] === undefined) throw new NotFoundError(`${processor} has no named query ${query}`, { hint: Object.keys(named).length ? `named queries: ${Object.keys(named).join(", ")}` : "declare `queries` in the processor" });
      params = queryStringParams(req.query, new Set(["query"]));
    }

    // Before the feed is made: one refused beyond the cap must leave nothing behind (hub.open checks again).
    deps.hub.assertRoom();
    const feed = feeds.get(processor) ?? new ChangeFeed(processor, deps);
    feeds.set(processor, feed);
    const stream = deps.hub.open(reply);
    if (query !== undefined) follow = resultFollower(stream, deps, processor, query as string, params);
    stream.send("ready", { processor, version: feed.live, seq: feed.seq, ...(query !== undefined ? { query } : {}) });
    const unsubscribe = feed.subscribe((e) => {
      if (e.kind === "live") stream.send("live", { version: e.version, previous: e.previous, seq: e.seq });
      else stream.send("commit", { version: e.version, seq: e.seq });
      follow?.();
    });
    stream.onClose(() => {
      if (unsubscribe() && feeds.get(processor) === feed) {
        feed.stop();
        feeds.delete(processor);
      }
    });
    follow?.();
  });
}
