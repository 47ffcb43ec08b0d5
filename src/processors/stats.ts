import type { JetStreamManager } from "@nats-io/jetstream";
import type { Catalog, VersionStats } from "../views/index.js";
import type { VersionRunner } from "./runner.js";

/** Events/s is the rate over this window. */
const RATE_WINDOW_MS = 5000;

/** Rates below 10/s keep one decimal, so a slow trickle does not read 0. */
export function roundRate(eps: number): number {
  return eps >= 10 ? Math.round(eps) : Math.round(eps * 10) / 10;
}

/** Publishes each running version's checkpoint, lag and rate to the catalog twice a second. */
export class StatsReporter {
  readonly #timer: NodeJS.Timeout;
  readonly #samples = new Map<string, { applied: number; at: number }[]>();
  #busy: Promise<void> | undefined;
  #failing = false;

  constructor(private readonly catalog: Catalog, private readonly jsm: JetStreamManager, private readonly runners: Map<string, VersionRunner>, private readonly log: (m: string) => void, private readonly reports: (key: string) => boolean = () => true) {
    this.#timer = setInterval(() => {
      if (!this.#busy) this.#busy = this.#report().finally(() => (this.#busy = undefined));
    }, 500);
  }

  /**
   * The current figures of one runner. Events/s is measured over the last few seconds of reports, so a
   * trickle of one event a second reads 1, not 0 between events (a half-second rate flickers to 0).
   */
  figures(key: string, r: VersionRunner, logHead: number): VersionStats {
    const now = Date.now();
    let samples = this.#samples.get(key);
    if (!samples) this.#samples.set(key, (samples = []));
    samples.push({ applied: r.applied, at: now });
    while (samples.length > 2 && now - samples[1]!.at >= RATE_WINDOW_MS) samples.shift();
    const first = samples[0]!;
    const dt = (now - first.at) / 1000;
    const eps = dt > 0 ? Math.max(0, r.applied - first.applied) / dt : 0;
    return {
      checkpoint: r.checkpoint,
      applied: r.applied,
      // The checkpoint covers every event up to it (matching or not), so the lag is what lies beyond it.
      // A frozen version owes nothing past its --until.
      pending: Math.max(0, Math.min(logHead, r.record.untilSeq ?? logHead) - r.checkpoint),
      logHead,
      eventsPerSec: roundRate(eps),
      caughtUp: r.caughtUp,
      at: new Date(now).toISOString(),
      walBytes: r.walBytes,
      deadLetters: r.skipped,
      // Asked of the file now, in the same tick as the checkpoint: the publisher's count is from its last round.
      outbox: r.outboxEmpty ? 0 : Math.max(1, r.outboxPending),
      batchMs: r.batchTimes.snapshot(),
      ...(r.schemaNotes.length ? { schemaWarnings: r.schemaNotes } : {}),
      ...(r.lastTrouble ? { trouble: r.lastTrouble } : {}),
    };
  }

  async #report(): Promise<void> {
    for (const key of this.#samples.keys()) if (!this.runners.has(key)) this.#samples.delete(key);
    if (this.runners.size === 0) return;
    // All at once: one round trip per stream and one for the puts, not two per version, so a busy
    // connection (a rebuild pulling events) delays a report by one round trip, not by a dozen.
    // Several replicas run a version; its writer speaks for it.
    const entries = [...this.runners].filter(([key]) => this.reports(key));
    if (entries.length === 0) return;
    try {
      const streams = [...new Set(entries.map(([, r]) => r.inputStream))];
      const heads = new Map(await Promise.all(streams.map(async (s) => [s, (await this.jsm.streams.info(s)).state.last_seq] as const)));
      await Promise.all(entries.map(([key, r]) => {
        const [name, version] = key.split("/");
        return this.catalog.putStats(name!, Number(version), this.figures(key, r, heads.get(r.inputStream)!));
      }));
    } catch (err) {
      // Once per outage, not twice a second: the worker logs the disconnect itself.
      if (!this.#failing) this.log(`stats not written (${(err as Error).message}); retrying quietly`);
      this.#failing = true;
      return;
    }
    this.#failing = false;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#busy;
  }
}
