import type { DataDir } from "../views/index.js";
import type { VersionRunner } from "./runner.js";
import type { VersionWriter } from "./writer.js";
import type { SnapshotStore } from "./snapshots.js";

/** Takes a snapshot of every version this worker writes, every `everyMs`, when its checkpoint moved since the last one. */
export class SnapshotSchedule {
  readonly #timer: NodeJS.Timeout;
  readonly #last = new Map<string, number>();
  #busy = false;

  constructor(
    private readonly store: SnapshotStore,
    private readonly dataDir: DataDir,
    private readonly runners: Map<string, VersionRunner>,
    private readonly writers: Map<string, VersionWriter>,
    everyMs: number,
    private readonly keep: number,
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
          const s = await this.store.take(this.dataDir.viewFile(r.name, r.version), r.name, r.version, this.keep);
          this.#last.set(key, s.checkpoint);
          this.log(`${key}: snapshot at ${s.checkpoint} (${s.bytes} bytes)`);
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
