import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";

/** A `kappa dev` subprocess: embedded nats-server, worker and query server. Stopped by PID. */
export class DevProcess {
  private constructor(readonly child: ChildProcess, readonly nats: string, readonly http: string | null, readonly natsPids: number[], public stderr: string[]) {}

  /** The embedded server's PID (the first member's, with --cluster). */
  get natsPid(): number {
    return this.natsPids[0] ?? -1;
  }

  static async start(dataDir: string, extraArgs: string[] = []): Promise<DevProcess> {
    const child = spawn(process.execPath, [resolve("bin/kappa.js"), "--data-dir", dataDir, "--json", "dev", "--port", "0", ...extraArgs], { stdio: ["ignore", "pipe", "pipe"] });
    const stderr: string[] = [];
    child.stderr!.on("data", (b: Buffer) => stderr.push(b.toString()));
    try {
      const ready = await new Promise<{ nats: string; http: string | null; natsPids: number[] }>((res, rej) => {
        let buf = "";
        let natsPids: number[] = [];
        child.stdout!.on("data", (b: Buffer) => {
          buf += b.toString();
          for (const line of buf.split("\n")) {
            try {
              const j = JSON.parse(line) as { ready?: boolean; nats: string; http: string | null; msg?: string };
              const m = j.msg && /\(pid ([\d, ]+)\)/.exec(j.msg);
              if (m) natsPids = m[1]!.split(",").map(Number);
              if (j.ready) res({ nats: j.nats, http: j.http, natsPids });
            } catch {
              // partial line
            }
          }
        });
        child.once("exit", (c) => rej(new Error(`kappa dev exited with ${c}: ${stderr.join("")}`)));
        setTimeout(() => rej(new Error(`kappa dev not ready in 30 s: ${stderr.join("")}`)), 30_000);
      });
      return new DevProcess(child, ready.nats, ready.http, ready.natsPids, stderr);
    } catch (err) {
      child.kill("SIGKILL");
      throw err;
    }
  }

  /** Sends a signal and waits for the exit code. */
  async stop(signal: NodeJS.Signals = "SIGINT"): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((r) => this.child.once("exit", (c) => r(c)));
    this.child.kill(signal);
    const t = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    const code = await exited;
    clearTimeout(t);
    return code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    for (const pid of this.natsPids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone, as it should be
      }
    }
  }
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
