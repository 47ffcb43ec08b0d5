import type { JetStreamManager } from "@nats-io/jetstream";
import type { Catalog, VersionStats } from "../views/index.js";
import type { VersionRunner } from "./runner.js";

/** Publishes each running version's checkpoint, lag and rate to the catalog twice a second. */
export class StatsReporter {
  readonly #timer: NodeJS.Timeout;
  readonly #last = new Map<string, { applied: number; at: number; eps: number }>();
  #busy: Promise<void> | undefined;
  #failing = false;

  constructor(private readonly catalog: Catalog, private readonly jsm: JetStreamManager, private readonly runners: Map<string, VersionRunner>, private readonly log: (m: string) => void) {
    this.#timer = setInterval(() => {
      if (!this.#busy) this.#busy = this.#report().finally(() => (this.#busy = undefined));
    }, 500);
  }

  /** The current figures of one runner (events/s smoothed over the last seconds). */
  figures(key: string, r: VersionRunner, logHead: number): VersionStats {
    const now = Date.now();
    const prev = this.#last.get(key);
    let eps = 0;
    if (prev) {
      const dt = (now - prev.at) / 1000;
      const inst = dt > 0 ? (r.applied - prev.applied) / dt : 0;
      eps = prev.eps === 0 ? inst : prev.eps * 0.5 + inst * 0.5;
    }
    this.#last.set(key, { applied: r.applied, at: now, eps });
    return {
      checkpoint: r.checkpoint,
      applied: r.applied,
      // The checkpoint covers every event up to it (matching or not), so the lag is what lies beyond it.
      // A frozen version owes nothing past its --until.
      pending: Math.max(0, Math.min(logHead, r.record.untilSeq ?? logHead) - r.checkpoint),
      logHead,
      eventsPerSec: Math.round(eps),
      caughtUp: r.caughtUp,
      at: new Date(now).toISOString(),
      walBytes: r.walBytes,
      deadLetters: r.skipped,
      outbox: r.outboxPending,
      batchMs: r.batchTimes.snapshot(),
      ...(r.lastTrouble ? { trouble: r.lastTrouble } : {}),
    };
  }

  async #report(): Promise<void> {
    if (this.runners.size === 0) return;
    const heads = new Map<string, number>();
    for (const [key, r] of this.runners) {
      const [name, version] = key.split("/");
      try {
        const stream = r.inputStream;
        if (!heads.has(stream)) heads.set(stream, (await this.jsm.streams.info(stream)).state.last_seq);
        await this.catalog.putStats(name!, Number(version), this.figures(key, r, heads.get(stream)!));
      } catch (err) {
        // Once per outage, not twice a second: the worker logs the disconnect itself.
        if (!this.#failing) this.log(`stats not written (${(err as Error).message}); retrying quietly`);
        this.#failing = true;
        return;
      }
    }
    this.#failing = false;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#busy;
  }
}
