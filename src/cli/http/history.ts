import type { ViewsSnapshot } from "./snapshot.js";

/** One moment of every non-retired version: what the status page's charts draw. */
export interface StatusSample {
  /** Milliseconds since the epoch. */
  t: number;
  versions: { processor: string; version: number; eps: number | null; lag: number | null; checkpoint: number | null }[];
}

/**
 * Samples the views once a second, whether or not anyone watches, so a page opened now draws the last
 * minutes at once; keeps a fixed number of samples (memory stays bounded however long the server runs).
 */
export class StatusHistory {
  readonly #samples: StatusSample[] = [];
  readonly #subscribers = new Set<(s: StatusSample) => void>();
  readonly #timer: NodeJS.Timeout;

  constructor(private readonly snapshot: () => ViewsSnapshot, intervalMs = 1000, private readonly keep = 300) {
    this.#timer = setInterval(() => this.#tick(), intervalMs).unref();
  }

  #tick(): void {
    const s = this.snapshot();
    const sample: StatusSample = {
      t: Date.parse(s.at),
      versions: s.processors.flatMap((p) =>
        p.versions.filter((v) => v.state !== "retired").map((v) => ({ processor: p.name, version: v.version, eps: v.eventsPerSec, lag: v.lag, checkpoint: v.checkpoint })),
      ),
    };
    this.#samples.push(sample);
    if (this.#samples.length > this.keep) this.#samples.shift();
    for (const fn of this.#subscribers) fn(sample);
  }

  /** The samples kept, oldest first. */
  samples(): StatusSample[] {
    return [...this.#samples];
  }

  /** Calls `fn` with every new sample until the returned function is called. */
  subscribe(fn: (s: StatusSample) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#subscribers.clear();
  }
}
