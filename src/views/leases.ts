import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { KappaError } from "../errors.js";
import { trySharedLock, tryExclusiveLock, SharedLocker } from "./fileLock.js";

/**
 * Reader leases. A query holds a shared lock on its version's lease file from before it opens the view
 * file until it is done; the worker deletes a retired version's files only while holding the exclusive
 * lock on that lease file. The kernel arbitrates both, across processes, PID namespaces and PID reuse
 * (a dead reader's lock is gone with it), and there is no gap between "nobody reads" and the delete.
 */
function leaseFile(viewsDir: string, version: number): string {
  return join(viewsDir, ".readers", `v${version}.lock`);
}

/** How long a reader waits for a deleter that holds the lease file (it holds it only while it removes files). */
const READER_WAIT_MS = 5000;

/** Takes a reader lease on one version; call the returned function to release it. */
export function takeLease(viewsDir: string, version: number): () => void {
  const lock = trySharedLock(leaseFile(viewsDir, version), READER_WAIT_MS);
  if (!lock) {
    throw new KappaError("LEASE_BUSY", `could not take a reader lease on v${version} within ${READER_WAIT_MS} ms`, { hint: "the worker is deleting this version's files; query again" });
  }
  return () => lock.release();
}

/** Runs `read` under a reader lease taken without waiting, once; null, and `read` not run, while a deleter holds it. */
export function readUnlessDeleting<T>(viewsDir: string, version: number, read: () => T): T | null {
  const lock = trySharedLock(leaseFile(viewsDir, version), 0);
  if (!lock) return null;
  try {
    return read();
  } finally {
    lock.release();
  }
}

/**
 * Reader leases for pollers such as the status page, which must not stall: taken without waiting, on lock
 * files kept open between polls (reopened when a deleter removed one).
 */
export class PollingLeases {
  readonly #open = new Map<string, SharedLocker>();

  /** Runs `read` under a lease on one version; null, and `read` not run, while a deleter holds it: that version's files are going. */
  read<T>(viewsDir: string, version: number, read: () => T): T | null {
    const path = leaseFile(viewsDir, version);
    let locker = this.#open.get(path);
    if (locker && !locker.current()) {
      locker.close();
      locker = undefined;
    }
    if (!locker) {
      const opened = SharedLocker.open(path);
      if (!opened) return null;
      this.#open.set(path, (locker = opened));
    }
    const lock = locker.tryShared();
    if (!lock) return null;
    try {
      return read();
    } finally {
      lock.release();
    }
  }

  /** Closes the lock file of one version (its poller is done with it). */
  forget(viewsDir: string, version: number): void {
    const path = leaseFile(viewsDir, version);
    this.#open.get(path)?.close();
    this.#open.delete(path);
  }

  /** Closes every lock file. */
  close(): void {
    for (const l of this.#open.values()) l.close();
    this.#open.clear();
  }
}

/**
 * Deletes `files` of one version if no reader holds a lease on it, in one step under the exclusive lock;
 * false (nothing deleted) while a reader holds one. The lease file goes too.
 */
export function deleteUnread(viewsDir: string, version: number, files: string[]): boolean {
  const path = leaseFile(viewsDir, version);
  const lock = tryExclusiveLock(path);
  if (!lock) return false;
  try {
    for (const f of files) rmSync(f, { force: true });
    // A reader that opened the lease file before this unlink and locks it afterwards finds the view file gone.
    rmSync(path, { force: true });
  } finally {
    lock.release();
  }
  return true;
}

/** True when this version has a lease file (a reader holds or held a lease since the last delete). */
export function hasLeaseFile(viewsDir: string, version: number): boolean {
  return existsSync(leaseFile(viewsDir, version));
}

/** True when a process with this PID exists (EPERM: it exists but is not ours). For messages and tests only: never to decide who holds what. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
