import type { VersionRunner } from "./runner.js";
import type { VersionWriter } from "./writer.js";
import type { SnapshotTaker } from "./snapshotTaker.js";

/** Takes a snapshot of every version this worker writes, every `everyMs`, when its checkpoint moved since the last one. */
export class SnapshotSchedule {
  readonly #timer: NodeJS.Timeout;
  readonly #last = new Map<string, number>();
  #busy = false;

  constructor(
    private readonly taker: SnapshotTaker,
    private readonly runners: Map<string, VersionRunner>,
    private readonly writers: Map<string, VersionWriter>,
    everyMs: number,
    private readonly log: (m: string) => void,
  ) {
    this.#timer = setInterval(() => void this.#round(), everyMs);
    this.#timer.unref();
  }

  async #round(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      for (const [key, r] of this.runners) {
        // One copy per version is enough: its writer takes it.
        if (!this.writers.get(key)?.isWriter || r.checkpoint === 0 || this.#last.get(key) === r.checkpoint) continue;
        try {
          // Through the taker: never two at once, also with a `kappa snapshot` request in flight.
          const s = await this.taker.take(r.name, r.version, r.checkpoint, "schedule");
          this.#last.set(key, s.checkpoint);
          if (!s.joined) this.log(`${key}: snapshot at ${s.checkpoint} (${s.bytes} bytes)`);
        } catch (err) {
          this.log(`${key}: snapshot failed: ${(err as Error).message}`);
        }
      }
    } finally {
      this.#busy = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
