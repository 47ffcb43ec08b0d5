import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";

/** `kappa run` as a subprocess, so a test can SIGKILL it like a crash. */
export class WorkerProcess {
  private constructor(readonly child: ChildProcess, readonly log: string[]) {}

  static start(natsUrl: string, dataDir: string): WorkerProcess {
    const child = spawn(process.execPath, [resolve("bin/kappa.js"), "--nats", natsUrl, "--data-dir", dataDir, "run"], { stdio: ["ignore", "ignore", "pipe"] });
    const log: string[] = [];
    child.stderr!.on("data", (b: Buffer) => log.push(b.toString()));
    return new WorkerProcess(child, log);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Kills the worker at once, as a crash would, and waits until it is gone. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise<void>((r) => this.child.once("exit", () => r()));
    this.child.kill(signal);
    await gone;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}
