/**
 * Resource scopes for the benchmark: every server and subprocess a stage starts is stopped by its PID
 * when the stage ends, also when it fails; a process-exit hook SIGKILLs whatever is still registered
 * and removes the registered scratch directories.
 */
import { rmSync } from "node:fs";

const live = new Set<number>();
const dirs = new Set<string>();

process.once("exit", () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  for (const pid of live) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

/** Remembers a child PID so that a crash of the bench still kills it. */
export function trackPid(pid: number | undefined): void {
  if (pid && pid > 0) live.add(pid);
}

/** Removes a directory when the bench exits, however it exits (a killed server leaves its store behind). */
export function trackDir(dir: string): void {
  dirs.add(dir);
}

/** Forgets a child PID once it has exited. */
export function untrackPid(pid: number | undefined): void {
  if (pid) live.delete(pid);
}

/** True while a process with this PID exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Closers run in reverse order when the scope ends; errors in closers are reported, not thrown. */
export class Scope {
  readonly #closers: { what: string; fn: () => Promise<void> | void }[] = [];

  /** Registers a cleanup step. */
  defer(what: string, fn: () => Promise<void> | void): void {
    this.#closers.push({ what, fn });
  }

  async close(): Promise<void> {
    while (this.#closers.length > 0) {
      const c = this.#closers.pop()!;
      try {
        await c.fn();
      } catch (err) {
        process.stderr.write(`  cleanup of ${c.what} failed: ${(err as Error).message}\n`);
      }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Runs `fn` with a fresh scope that is closed afterwards, whatever happens. */
export async function withScope<T>(fn: (scope: Scope) => Promise<T>): Promise<T> {
  const scope = new Scope();
  try {
    return await fn(scope);
  } finally {
    await scope.close();
  }
}
