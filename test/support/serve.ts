import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { request } from "node:https";
import { resolve } from "node:path";

const BIN = resolve("bin/kappa.js");

/** A `kappa serve` subprocess, stopped by its PID (SIGINT, then SIGKILL) on dispose. */
export class ServeProcess {
  private constructor(readonly child: ChildProcess, readonly url: string, readonly stderr: string[]) {}

  /** Starts `kappa <global> --json serve --port 0 <args>` and resolves once it prints its ready line. */
  static async start(global: string[], args: string[] = []): Promise<ServeProcess> {
    const child = spawn(process.execPath, [BIN, ...global, "--json", "serve", "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const stderr: string[] = [];
    child.stderr!.on("data", (b: Buffer) => stderr.push(b.toString()));
    try {
      const url = await new Promise<string>((res, rej) => {
        let buf = "";
        child.stdout!.on("data", (b: Buffer) => {
          buf += b.toString();
          const line = buf.split("\n").find((l) => l.includes('"ready"'));
          if (line) res((JSON.parse(line) as { http: string }).http);
        });
        child.once("exit", (c) => rej(new Error(`kappa serve exited with ${c}: ${stderr.join("")}`)));
        setTimeout(() => rej(new Error(`kappa serve not ready in 30 s: ${stderr.join("")}`)), 30_000);
      });
      return new ServeProcess(child, url, stderr);
    } catch (err) {
      child.kill("SIGKILL");
      throw err;
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((r) => this.child.once("exit", (c) => r(c)));
    this.child.kill("SIGINT");
    const t = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    const code = await exited;
    clearTimeout(t);
    return code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime, clock ticks. */
  own: number;
  /** cutime + cstime: children already reaped. */
  reaped: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: fields start after the last ")".
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { pid, ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
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

/** An HTTPS request that trusts one CA (the test's self-signed certificate). */
export function httpsRequest(url: string, opts: { ca: Buffer; method?: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((res, rej) => {
    const req = request(url, { method: opts.method ?? "GET", headers: opts.headers, ca: opts.ca }, (r) => {
      let body = "";
      r.on("data", (b: Buffer) => (body += b.toString()));
      r.on("end", () => res({ status: r.statusCode ?? 0, headers: r.headers, body }));
    });
    req.on("error", rej);
    req.end(opts.body);
  });
}
