import { readdirSync, readFileSync } from "node:fs";
import { basename } from "node:path";

/** One process as /proc/<pid>/stat describes it. */
export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime, clock ticks. */
  own: number;
  /** cutime + cstime: children already reaped. */
  reaped: number;
  /** Clock ticks after boot when it started: with the PID, names one process even after the PID is reused. */
  start: number;
}

/** A process's stat line, parsed; undefined when it is gone. */
export function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: fields start after the last ")".
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { pid, ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]), start: Number(f[19]) };
  } catch {
    return undefined;
  }
}

/** The program a process runs (argv[0]'s file name), or undefined when it is gone. */
export function programOf(pid: number): string | undefined {
  try {
    const argv0 = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
    return argv0 ? basename(argv0) : undefined;
  } catch {
    return undefined;
  }
}

/** The whole command line of a process, NUL-separated arguments joined by spaces ("" when gone). */
export function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}

/** The live descendants of a process (children, their children, ...), from /proc. */
export function descendants(root: number): number[] {
  const all = readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map((d) => readStat(Number(d))).filter((s): s is ProcStat => s !== undefined);
  const out: number[] = [];
  const frontier = [root];
  while (frontier.length) {
    const p = frontier.pop()!;
    for (const s of all) if (s.ppid === p) {
      out.push(s.pid);
      frontier.push(s.pid);
    }
  }
  return out;
}

/** CPU seconds used by a process and all its descendants, live or reaped, read from /proc. */
export function treeCpuSeconds(root: number): number {
  const self = readStat(root);
  if (!self) return NaN;
  let ticks = self.own + self.reaped;
  for (const pid of descendants(root)) ticks += readStat(pid)?.own ?? 0;
  return ticks / 100; // USER_HZ is 100 on Linux
}

/** True when a process with this PID exists. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Sends a signal to the process that had this PID and start time, and to nothing else: once it is gone its
 * PID may belong to someone else's process. True when the signal was sent.
 */
export function signalSame(p: { pid: number; start: number }, signal: NodeJS.Signals): boolean {
  if (readStat(p.pid)?.start !== p.start) return false;
  try {
    process.kill(p.pid, signal);
    return true;
  } catch {
    return false;
  }
}
