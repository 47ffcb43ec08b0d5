import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { pidAlive } from "./procs.js";

/** `kappa run` as a subprocess, so a test can SIGKILL or SIGSTOP it like a crash or a pause. */
export class WorkerProcess {
  private constructor(readonly child: ChildProcess, readonly log: string[]) {}

  /** Starts `kappa run`; `args` go after `run` (--worker-id, --processors, --lease-ttl …), `globals` before it (--replicas …). */
  static start(natsUrl: string, dataDir: string, args: string[] = [], globals: string[] = []): WorkerProcess {
    const child = spawn(process.execPath, [resolve("bin/kappa.js"), "--nats", natsUrl, "--data-dir", dataDir, ...globals, "run", ...args], { stdio: ["ignore", "ignore", "pipe"] });
    const log: string[] = [];
    child.stderr!.on("data", (b: Buffer) => log.push(b.toString()));
    return new WorkerProcess(child, log);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Everything the worker logged so far. */
  get output(): string {
    return this.log.join("");
  }

  /** Sends a signal without waiting (SIGSTOP / SIGCONT). */
  signal(signal: NodeJS.Signals): void {
    if (!this.exited) this.child.kill(signal);
  }

  /**
   * Kills the worker at once, as a crash would, and waits until it is gone; throws unless the process
   * really died (of SIGKILL, when that was the signal): a kill test whose kill did not land proves nothing.
   */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once("exit", () => r()));
    // A stopped process ignores SIGTERM until continued.
    if (signal !== "SIGKILL") this.child.kill("SIGCONT");
    this.child.kill(signal);
    await gone;
    if (signal === "SIGKILL" && this.child.signalCode !== "SIGKILL") throw new Error(`worker ${this.pid} exited with ${this.child.exitCode} instead of dying of SIGKILL`);
    if (pidAlive(this.pid)) throw new Error(`worker ${this.pid} is still alive after ${signal}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) await this.kill();
  }
}
