import type { QueryAnswer, QueryPool, QueryRequest } from "../../views/index.js";
import type { CliContext } from "../context.js";
import type { AppendStats } from "./admission.js";
import type { CheckpointReader } from "./checkpoints.js";
import type { LiveCatalog } from "./liveCatalog.js";
import type { QueryLimits } from "./params.js";
import type { SseHub } from "./sse.js";
import type { ViewsSnapshot } from "./snapshot.js";

/** What the route files share: one of each per server. */
export interface ServerDeps {
  ctx: CliContext;
  catalog: LiveCatalog;
  checkpoints: CheckpointReader;
  pool: QueryPool;
  /** Runs one view query: against this data dir, or (`serve --remote`) over NATS on a worker holding it, which it names. */
  query: (req: QueryRequest) => Promise<QueryAnswer & { worker?: string }>;
  hub: SseHub;
  limits: QueryLimits;
  /** Caps on event streams: how many may be open, and how many named-query re-runs they may have in flight. */
  streams: { max: number; followQueries: Semaphore };
  /** How often change streams read the live version's checkpoint. */
  pollMs: number;
  /** How often the status stream looks for a change. */
  statusIntervalMs: number;
  /** The current state of every view. */
  snapshot: () => ViewsSnapshot;
  /** Cleanups to run when the server closes. */
  onClose: (fn: () => void) => void;
  /** What `POST /events` did, for /metrics. */
  appendStats?: AppendStats;
}

/** When each request arrived (set by the first onRequest hook), so timeouts count time spent queued. */
export const arrivals = new WeakMap<object, number>();

/** When a request arrived, or now when no hook recorded it. */
export function arrivedAt(req: { raw: object }): number {
  return arrivals.get(req.raw) ?? Date.now();
}

/** A counting semaphore: at most `size` holders at once; tryAcquire never waits. */
export class Semaphore {
  #held = 0;
  constructor(readonly size: number) {}

  /** Takes a slot if one is free; the returned function gives it back (once). */
  tryAcquire(): (() => void) | undefined {
    if (this.#held >= this.size) return undefined;
    this.#held++;
    let released = false;
    return () => {
      if (!released) this.#held--;
      released = true;
    };
  }

  get held(): number {
    return this.#held;
  }
}
