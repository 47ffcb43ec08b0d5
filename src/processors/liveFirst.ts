import { readlinkSync } from "node:fs";
import { getPriority, setPriority } from "node:os";
import { Worker as Thread } from "node:worker_threads";

/** Live versions that had events within this long count as busy: rebuilds then read in small pulls. */
const LIVE_BUSY_MS = 1000;
/** How much nicer than the worker a rebuild's apply thread runs (Linux: per thread): at +10 it gets about a tenth of a contended core. */
const BACKGROUND_STEP = 10;

/**
 * Live versions go first. A worker shares one of these among its runners: caught-up versions say when
 * they get events; versions catching up read in small pulls while that is recent (their backlog then
 * never fills the NATS thread's socket ahead of a live event) and apply on threads of lower priority
 * (so a rebuild takes what CPU the live versions, queries and nats-server leave, and all of it when idle).
 */
export class LiveFirst {
  #liveAt = -Infinity;

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

  /** A caught-up version got events. */
  sawLiveEvents(): void {
    this.#liveAt = performance.now();
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
