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

/** Runs the `kappa` binary without blocking the test (for concurrent runs). */
export function kappaAsync(args: string[], opts: { env?: Record<string, string> } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...opts.env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.on("exit", (code) => res({ code: code ?? -1, stdout, stderr }));
  });
}
