import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { descendants, programOf, readStat, signalSame } from "./procs.js";

export { pidAlive } from "./procs.js";

/** A process named by PID and start time, so it is never confused with a later one that reuses the PID. */
interface Proc {
  pid: number;
  start: number;
}

/** A `kappa dev` subprocess: embedded nats-server, worker and query server. Stopped by PID. */
export class DevProcess {
  private constructor(readonly child: ChildProcess, readonly nats: string, readonly http: string | null, private readonly servers: Proc[], public stderr: string[]) {}

  /** The embedded servers' PIDs (one per member with --cluster), found as dev's own children in /proc. */
  get natsPids(): number[] {
    return this.servers.map((s) => s.pid);
  }

  /** The embedded server's PID (the first member's, with --cluster). */
  get natsPid(): number {
    return this.natsPids[0] ?? -1;
  }

  static async start(dataDir: string, extraArgs: string[] = []): Promise<DevProcess> {
    const child = spawn(process.execPath, [resolve("bin/kappa.js"), "--data-dir", dataDir, "--json", "dev", "--port", "0", ...extraArgs], { stdio: ["ignore", "pipe", "pipe"] });
    const stderr: string[] = [];
    child.stderr!.on("data", (b: Buffer) => stderr.push(b.toString()));
    try {
      const ready = await new Promise<{ nats: string; http: string | null }>((res, rej) => {
        let buf = "";
        child.stdout!.on("data", (b: Buffer) => {
          buf += b.toString();
          for (const line of buf.split("\n")) {
            try {
              const j = JSON.parse(line) as { ready?: boolean; nats: string; http: string | null };
              if (j.ready) res({ nats: j.nats, http: j.http });
            } catch {
              // partial line
            }
          }
        });
        child.once("exit", (c) => rej(new Error(`kappa dev exited with ${c}: ${stderr.join("")}`)));
        setTimeout(() => rej(new Error(`kappa dev not ready in 30 s: ${stderr.join("")}`)), 30_000);
      });
      // Its servers are its own children, started before it said ready: found by its PID, not by a log line's wording.
      const at = extraArgs.indexOf("--cluster");
      const expected = at >= 0 ? Number(extraArgs[at + 1]) : 1;
      const servers = descendants(child.pid!)
        .filter((pid) => programOf(pid) === "nats-server")
        .map((pid) => ({ pid, start: readStat(pid)?.start ?? -1 }))
        .filter((p) => p.start >= 0);
      if (servers.length !== expected) {
        for (const s of servers) signalSame(s, "SIGKILL");
        throw new Error(`kappa dev (pid ${child.pid}) is ready but has ${servers.length} nats-server children, not ${expected}: the test could not stop them by PID — ${stderr.join("").slice(-1000)}`);
      }
      return new DevProcess(child, ready.nats, ready.http, servers, stderr);
    } catch (err) {
      child.kill("SIGKILL");
      throw err;
    }
  }

  /** Sends a signal and waits for the exit code. */
  async stop(signal: NodeJS.Signals = "SIGINT"): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((r) => this.child.once("exit", (c) => r(c)));
    this.child.kill(signal);
    const t = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    const code = await exited;
    clearTimeout(t);
    return code;
  }

  /** Stops dev, then kills any of its servers it left behind (only those very processes, by PID and start time). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    for (const s of this.servers) signalSame(s, "SIGKILL");
  }
}
