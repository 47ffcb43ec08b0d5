import { hostname } from "node:os";
import type { WorkerRegistry, HeldVersion } from "../views/index.js";
import type { VersionRunner } from "./runner.js";
import type { VersionWriter } from "./writer.js";

/** How often a worker reports what it holds. */
export const HEARTBEAT_MS = 1000;

/** Reports, once a second, the versions this worker holds: checkpoint, lag, and which it writes. */
export class Heartbeat {
  readonly #timer: NodeJS.Timeout;
  readonly #startedAt = new Date().toISOString();
  #busy = false;
  #failing = false;

  constructor(
    private readonly registry: WorkerRegistry,
    private readonly who: { worker: string; dataDir: string; processors: string[] | null },
    private readonly runners: Map<string, VersionRunner>,
    private readonly writers: Map<string, VersionWriter>,
    private readonly log: (m: string) => void,
  ) {
    this.#timer = setInterval(() => void this.beat(), HEARTBEAT_MS);
    void this.beat();
  }

  /** What this worker holds now. */
  held(): HeldVersion[] {
    return [...this.runners.entries()].map(([key, r]) => ({
      processor: r.name,
      version: r.version,
      checkpoint: r.checkpoint,
      pending: r.pending,
      caughtUp: r.caughtUp,
      writer: this.writers.get(key)?.isWriter === true,
      ...(r.failed ? { failed: true } : {}),
    }));
  }

  async beat(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      await this.registry.beat({ ...this.who, host: hostname(), pid: process.pid, startedAt: this.#startedAt, at: new Date().toISOString(), versions: this.held() });
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) this.log(`heartbeat not written (${(err as Error).message}); retrying quietly`);
      this.#failing = true;
    } finally {
      this.#busy = false;
    }
  }

  /** Stops beating; a clean stop removes the worker from the registry. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.registry.remove(this.who.worker).catch(() => {});
  }
}
