/** CPU time used by processes, from /proc: contention on a shared machine moves rates, much less CPU per event. */
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";

/** User + system CPU ms a process has used so far (all its threads); 0 when it is gone. */
export function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
  } catch {
    return 0;
  }
}

/** Measures CPU used by a set of processes between start and stop. */
export class CpuMeter {
  readonly #start: Map<string, number>;
  constructor(private readonly pids: Record<string, number>) {
    this.#start = new Map(Object.entries(pids).map(([k, p]) => [k, cpuMs(p)]));
  }
  /** CPU ms used per process since the meter started. */
  stop(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, p] of Object.entries(this.pids)) out[k] = cpuMs(p) - this.#start.get(k)!;
    return out;
  }
}

/** µs of CPU per event, per process and in total. */
export function perEvent(used: Record<string, number>, events: number): Record<string, number> {
  const out: Record<string, number> = {};
  let total = 0;
  for (const [k, ms] of Object.entries(used)) {
    out[k] = Math.round(((ms * 1000) / events) * 100) / 100;
    total += ms;
  }
  out.total = Math.round(((total * 1000) / events) * 100) / 100;
  return out;
}

/** The 1-minute load average: other work on the machine skews every rate measured while it runs. */
export function load1(): number {
  return Math.round(loadavg()[0]! * 100) / 100;
}
