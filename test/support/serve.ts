import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:https";
import { resolve } from "node:path";

// The /proc helpers live in procs.ts; still importable from here, where they were.
export { descendants, treeCpuSeconds } from "./procs.js";

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
