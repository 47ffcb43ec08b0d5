import { readlinkSync } from "node:fs";
import { getPriority, setPriority } from "node:os";
import { Worker as Thread } from "node:worker_threads";

/** Live versions that had events within this long count as busy: rebuilds then read in small pulls. */
const LIVE_BUSY_MS = 1000;
/** Live events that wait this much longer than usual to reach the worker make rebuilds hold back. */
const LIVE_DELAY_TARGET_MS = 2;
/** "Usual" is the lowest delay seen over about this long (server and worker clocks may differ: only changes count). */
const BASE_DELAY_WINDOW_MS = 10_000;
/** A rebuild's pause after each batch grows (doubling, at most every 10 ms) up to this while live events queue up… */
const MAX_HOLD_MS = 200;
/** …and halves every this many ms while they do not. */
const EASE_EVERY_MS = 100;
/** How much nicer than the worker a rebuild's apply thread runs (Linux: per thread): at +10 it gets about a tenth of a contended core. */
const BACKGROUND_STEP = 10;

/**
 * Live versions go first. A worker shares one of these among its runners: caught-up versions say when
 * they get events and how long those took to arrive; versions catching up read in small pulls while that
 * is recent (their backlog then never fills the NATS thread's socket ahead of a live event), pause after
 * each batch while live events arrive later than usual (a rebuild is background traffic, as LEDBAT is
 * for networks: it backs off on rising delay and takes all the room when there is no live traffic), and
 * apply on threads of lower priority (so they take what CPU live versions and queries leave).
 */
export class LiveFirst {
  #liveAt = -Infinity;
  #hold = 0;
  #holdChangedAt = -Infinity;
  /** The lowest delay of this and the previous half-window. */
  #minNow = Infinity;
  #minBefore = Infinity;
  #windowStart = -Infinity;

  private constructor(
    /** Whether rebuild threads run at lower priority: only where a thread can return to normal at catch-up. */
    readonly lowerRebuilds: boolean,
  ) {}

  /** Probes once whether this process may lower a thread's priority and raise it again (Linux, CAP_SYS_NICE or RLIMIT_NICE ≥ 20). */
  static async create(): Promise<LiveFirst> {
    return new LiveFirst(await priorityRoundTrip());
  }

  /** For tests and callers without threads of their own: never lowers priorities. */
  static withoutPriorities(): LiveFirst {
    return new LiveFirst(false);
  }

  /** A caught-up version got events; the last of them was stored at `storedAt` (epoch ms, the server's clock). */
  sawLiveEvents(storedAt: number): void {
    const now = performance.now();
    this.#liveAt = now;
    const delay = Date.now() - storedAt;
    if (now - this.#windowStart > BASE_DELAY_WINDOW_MS / 2) {
      this.#minBefore = this.#minNow;
      this.#minNow = Infinity;
      this.#windowStart = now;
    }
    this.#minNow = Math.min(this.#minNow, delay);
    const queued = delay - Math.min(this.#minNow, this.#minBefore);
    if (queued > LIVE_DELAY_TARGET_MS) {
      if (now - this.#holdChangedAt < 10) return;
      this.#hold = Math.min(MAX_HOLD_MS, Math.max(2, this.#hold * 2));
      this.#holdChangedAt = now;
    } else if (this.#hold > 0 && now - this.#holdChangedAt >= EASE_EVERY_MS) {
      this.#hold = this.#hold < 2 ? 0 : this.#hold / 2;
      this.#holdChangedAt = now;
    }
  }

  /** How long a rebuild waits after each batch before it reads on: 0 unless live events arrive later than usual. */
  get rebuildHoldMs(): number {
    return this.liveBusy ? this.#hold : 0;
  }

  /** Whether caught-up versions got events in the last second. */
  get liveBusy(): boolean {
    return performance.now() - this.#liveAt < LIVE_BUSY_MS;
  }
}

/** The calling thread's kernel id (Linux), or undefined elsewhere. */
function threadId(): number | undefined {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    return Number.isInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Lowers the calling thread's priority below the process's; the returned function puts it back.
 * Does nothing where the system refuses or has no per-thread priorities.
 */
export function lowerThreadPriority(): () => void {
  const tid = threadId();
  if (tid === undefined) return () => {};
  try {
    const base = getPriority(tid);
    setPriority(tid, Math.min(19, base + BACKGROUND_STEP));
    return () => {
      try {
        setPriority(tid, base);
      } catch {
        // the probe said this works; a refusal now leaves the thread nicer, never stops it
      }
    };
  } catch {
    return () => {};
  }
}

let probe: Promise<boolean> | undefined;

/** Whether a thread may lower its priority and raise it back — tried on a throwaway thread, once per process. */
function priorityRoundTrip(): Promise<boolean> {
  probe ??= new Promise<boolean>((resolve) => {
    const code = `
      const { readlinkSync } = require("node:fs");
      const { getPriority, setPriority } = require("node:os");
      const { parentPort } = require("node:worker_threads");
      let ok = false;
      try {
        const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
        const base = getPriority(tid);
        setPriority(tid, Math.min(19, base + ${BACKGROUND_STEP}));
        setPriority(tid, base);
        ok = true;
      } catch {}
      parentPort.postMessage(ok);`;
    const t = new Thread(code, { eval: true });
    t.once("message", (ok: boolean) => resolve(ok));
    t.once("error", () => resolve(false));
    t.once("exit", () => resolve(false));
  });
  return probe;
}
