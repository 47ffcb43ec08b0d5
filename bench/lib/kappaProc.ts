/** The `kappa` command as a subprocess (so its memory and CPU profile are its own), and RSS sampling of it. */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { once } from "node:events";
import { trackPid, untrackPid, type Scope } from "./scope.js";

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const bin = fileURLToPath(new URL("../../bin/kappa.js", import.meta.url));

/** A running `kappa` subprocess with its output collected line by line. */
export class KappaProcess {
  readonly lines: string[] = [];
  /** performance.now() when each of `lines` arrived. */
  readonly lineTimes: number[] = [];
  /** Standard output alone (up to 1 MB), for commands that print JSON. */
  stdout = "";
  readonly exited: Promise<number | null>;
  #watchers: { test: (l: string) => boolean; resolve: (l: string) => void }[] = [];

  constructor(readonly child: ChildProcess) {
    this.exited = once(child, "exit").then(([code]) => code as number | null);
    let partial = "";
    const onData = (b: Buffer) => {
      const parts = (partial + b.toString()).split("\n");
      partial = parts.pop()!;
      for (const l of parts) this.#onLine(l);
    };
    child.stdout!.on("data", (b: Buffer) => {
      if (this.stdout.length < 1 << 20) this.stdout += b.toString();
      onData(b);
    });
    child.stderr!.on("data", onData);
  }

  get pid(): number {
    return this.child.pid!;
  }

  #onLine(l: string): void {
    if (this.lines.length < 5000) {
      this.lines.push(l);
      this.lineTimes.push(performance.now());
    }
    if (process.env.BENCH_ECHO) process.stderr.write(`    [${this.pid}] ${l}\n`);
    this.#watchers = this.#watchers.filter((w) => (w.test(l) ? (w.resolve(l), false) : true));
  }

  /** Resolves with the first line (already seen or still to come) that matches. */
  waitForLine(re: RegExp, timeoutMs = 60_000): Promise<string> {
    const seen = this.lines.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`kappa ${this.pid}: no line matching ${re} within ${timeoutMs} ms; last lines:\n${this.lines.slice(-10).join("\n")}`)), timeoutMs);
      this.#watchers.push({ test: (l) => re.test(l), resolve: (l) => (clearTimeout(t), resolve(l)) });
      void this.exited.then((code) => reject(new Error(`kappa ${this.pid} exited (${code}) before printing ${re}; last lines:\n${this.lines.slice(-10).join("\n")}`)));
    });
  }

  /** SIGINT (a clean stop that also writes a --cpu-prof profile), SIGKILL after `graceMs`. */
  async stop(graceMs = 30_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    process.kill(this.pid, "SIGINT");
    const t = setTimeout(() => process.kill(this.pid, "SIGKILL"), graceMs);
    const code = await this.exited;
    clearTimeout(t);
    untrackPid(this.pid);
    return code;
  }
}

/** Starts `node [nodeArgs] bin/kappa.js args…`, stopped by PID when the scope ends. */
export function spawnKappa(scope: Scope, args: string[], nodeArgs: string[] = []): KappaProcess {
  const child = spawn(process.execPath, [...nodeArgs, bin, ...args], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_OPTIONS: "" } });
  trackPid(child.pid);
  const p = new KappaProcess(child);
  scope.defer(`kappa ${child.pid}`, async () => void (await p.stop()));
  return p;
}

/** Samples VmRSS and VmHWM of a process from /proc. */
export class RssSampler {
  #timer: NodeJS.Timeout;
  maxRssKb = 0;
  hwmKb = 0;
  readonly samples: { ms: number; rssKb: number }[] = [];
  readonly #t0 = performance.now();

  constructor(readonly pid: number, everyMs = 100) {
    this.#timer = setInterval(() => this.sample(), everyMs);
    this.sample();
  }

  sample(): void {
    try {
      const s = readFileSync(`/proc/${this.pid}/status`, "utf8");
      const rss = Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0);
      const hwm = Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0);
      this.maxRssKb = Math.max(this.maxRssKb, rss);
      this.hwmKb = Math.max(this.hwmKb, hwm);
      this.samples.push({ ms: performance.now() - this.#t0, rssKb: rss });
    } catch {
      // the process ended
    }
  }

  stop(): { peakMb: number; maxRssMb: number } {
    this.sample();
    clearInterval(this.#timer);
    return { peakMb: Math.round(this.hwmKb / 1024), maxRssMb: Math.round(this.maxRssKb / 1024) };
  }
}
