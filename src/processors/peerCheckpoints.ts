import { followKv, SILENT_AFTER_MS, type Follower, type WorkerBeat, type WorkerRegistry } from "../views/index.js";

interface Beat {
  /** The server's time of the heartbeat (ms): compared only with other server times, so local clock skew does not matter. */
  at: number;
  checkpoints: Map<string, number>;
}

/**
 * What every replica last reported applying, from the workers' heartbeats (a KV watch, no request per
 * query): the default staleness bound of remote queries. `floor(p, v)` is the highest checkpoint of the
 * version that any worker heard from recently reported — every answer at or past it is at least as fresh
 * as the freshest replica was a heartbeat ago. Beats older than the silence threshold, measured against the
 * newest beat (server time), do not count: a worker gone for good, or one from a log since recreated,
 * must not hold every answer back.
 */
export class PeerCheckpoints {
  readonly #beats = new Map<string, Beat>();
  readonly #follower: Follower;

  constructor(registry: WorkerRegistry, log: (line: string) => void) {
    this.#follower = followKv(registry.kv, "w.>", (e) => {
      if (e.operation !== "PUT" || e.length === 0) {
        this.#beats.delete(e.key);
        return;
      }
      const b = e.json<WorkerBeat>();
      const checkpoints = new Map<string, number>();
      for (const v of b.versions ?? []) if (typeof v.checkpoint === "number") checkpoints.set(`${v.processor}/${v.version}`, v.checkpoint);
      this.#beats.set(e.key, { at: e.created.getTime(), checkpoints });
    }, (m) => log(`query bound: ${m.replace(/^catalog /, "heartbeat ")}`));
  }

  /** The highest checkpoint of `processor` v`version` reported by a worker heard from recently (0 when none). */
  floor(processor: string, version: number): number {
    const key = `${processor}/${version}`;
    let newest = 0;
    for (const b of this.#beats.values()) newest = Math.max(newest, b.at);
    let floor = 0;
    for (const b of this.#beats.values()) {
      if (newest - b.at > SILENT_AFTER_MS) continue;
      floor = Math.max(floor, b.checkpoints.get(key) ?? 0);
    }
    return floor;
  }

  stop(): void {
    this.#follower.stop();
  }
}
