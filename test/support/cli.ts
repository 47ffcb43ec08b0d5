import { spawn, spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { CliContext } from "../../src/cli/context.js";
import type { TestEnv } from "./env.js";

const BIN = resolve("bin/kappa.js");

/** A CLI context pointed at a test environment, for calling command functions in-process. */
export function cliContext(env: TestEnv, extra: Record<string, unknown> = {}): CliContext {
  return new CliContext({ nats: env.nats.url, dataDir: env.dataDir.root, stream: env.spec.stream, prefix: env.spec.prefix, ...extra });
}

/** Runs the real `kappa` binary and returns its exit code and output. */
export function kappa(args: string[], opts: { env?: Record<string, string>; input?: string; cwd?: string } = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    input: opts.input,
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    timeout: 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Runs the `kappa` binary without blocking the test (for concurrent runs). A run that has not exited after
 * `timeoutMs` (default 120 s, below the test timeout) is killed by its PID and fails with its output so far,
 * so a hung CLI neither outlives its test nor leaves only "test timed out".
 */
export function kappaAsync(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...opts.env } });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const guard = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    }, timeoutMs);
    child.on("exit", (code, signal) => {
      clearTimeout(guard);
      if (!timedOut) return res({ code: code ?? -1, stdout, stderr });
      rej(new Error(`kappa ${args.join(" ")} did not exit within ${timeoutMs / 1000} s: killed (pid ${child.pid}, ${signal})\n--- stdout so far\n${stdout.slice(-2000)}\n--- stderr so far\n${stderr.slice(-2000)}`));
    });
  });
}
