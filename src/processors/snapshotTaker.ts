import type { DataDir } from "../views/index.js";
import { RefusedError } from "./queryAdmission.js";
import type { SnapshotInfo, SnapshotStore } from "./snapshots.js";

/** A new snapshot of a version on request no sooner than this after the newest one (default of --snapshot-min-interval). */
export const DEFAULT_SNAPSHOT_MIN_INTERVAL_MS = 10_000;
/** Snapshots of other versions that may wait while one is taken; beyond that, requests are refused. */
const MAX_WAITING = 2;

/** What a snapshot request got: a new snapshot, or the one it shares. */
export type TakenSnapshot = SnapshotInfo & {
  /** Another request for the same version was being taken: this one got its result. */
  joined?: true;
  /** The version's checkpoint had not moved since its newest snapshot: that one is the answer. */
  unchanged?: true;
};

/** How a worker takes snapshots. */
export interface SnapshotTakerOptions {
  store: SnapshotStore;
  dataDir: DataDir;
  keep: number;
  worker: string;
  /** No new snapshot of a version on request within this of its newest one (default 10 s). */
  minIntervalMs?: number;
}

/**
 * Takes a worker's snapshots one at a time: a second request for a version being taken joins it; a version
 * whose checkpoint has not moved since its newest snapshot gets that one; a new one on request comes no
 * sooner than `minIntervalMs` after the newest (whoever took it: the bucket is shared); other versions wait
 * in a short queue, and beyond it are refused. A copy is a child process that `close` kills.
 */
export class SnapshotTaker {
  readonly #inFlight = new Map<string, Promise<TakenSnapshot>>();
  readonly #waiting: (() => void)[] = [];
  readonly #abort = new AbortController();
  #running = false;

  constructor(private readonly opts: SnapshotTakerOptions) {}

  /** Takes (or shares) a snapshot of a version at `checkpoint`; `why` "schedule" skips the rate limit (the operator set the pace). */
  take(processor: string, version: number, checkpoint: number, why: "request" | "schedule"): Promise<TakenSnapshot> {
    const key = `${processor}/${version}`;
    const running = this.#inFlight.get(key);
    if (running) return running.then((s) => ({ ...s, joined: true as const }));
    // In the map before the first await: a request arriving meanwhile joins this one.
    const p = this.#take(processor, version, checkpoint, why).finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, p);
    return p;
  }

  async #take(processor: string, version: number, checkpoint: number, why: "request" | "schedule"): Promise<TakenSnapshot> {
    const { store, worker } = this.opts;
    if (why === "request") {
      const newest = (await store.list(processor, version)).find((s) => !s.bad);
      if (newest && newest.checkpoint >= checkpoint) return { ...newest, unchanged: true };
      const minMs = this.opts.minIntervalMs ?? DEFAULT_SNAPSHOT_MIN_INTERVAL_MS;
      const age = Date.now() - Date.parse(newest?.createdAt ?? "");
      if (newest && age >= 0 && age < minMs) {
        const wait = Math.ceil((minMs - age) / 1000);
        throw new RefusedError("SNAPSHOT_TOO_SOON", `${processor} v${version} has a snapshot from ${(age / 1000).toFixed(1)} s ago (${newest.name}, checkpoint ${newest.checkpoint}); the next may be taken in ${wait} s`, "query", {
          hint: `a new replica restores the newest snapshot by itself, so that one serves; or retry in ${wait} s (workers take at most one per version per ${minMs / 1000} s: \`kappa run --snapshot-min-interval\`)`,
        });
      }
    }
    await this.#slot(processor, version);
    try {
      return await store.take(this.opts.dataDir.viewFile(processor, version), processor, version, this.opts.keep, { worker, signal: this.#abort.signal });
    } finally {
      // Handed straight to the next waiter, so nobody slips in between.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running = false;
    }
  }

  /** One copy at a time per worker (disk and CPU); a few may wait. */
  async #slot(processor: string, version: number): Promise<void> {
    if (!this.#running) {
      this.#running = true;
      return;
    }
    if (this.#waiting.length >= MAX_WAITING) {
      throw new RefusedError("SNAPSHOT_BUSY", `${this.opts.worker} is taking a snapshot and ${this.#waiting.length} more wait; ${processor} v${version} was not started`, "replica", {
        hint: "retry when those are done (`kappa snapshot <processor> --list` shows what is stored)",
      });
    }
    await new Promise<void>((r) => this.#waiting.push(r));
  }

  /** Kills a copy in progress; waiting requests fail (their copy stops at once). */
  close(): void {
    this.#abort.abort();
    for (const w of this.#waiting.splice(0)) w();
  }
}
