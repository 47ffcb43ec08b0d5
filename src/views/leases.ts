import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

/** Reader leases: a file per open query, so a retired view file is deleted only when nobody reads it. */
function leaseDir(viewsDir: string): string {
  return join(viewsDir, ".readers");
}

/** Takes a lease on one version; call the returned function to release it. */
export function takeLease(viewsDir: string, version: number): () => void {
  const dir = leaseDir(viewsDir);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `v${version}.${process.pid}.${randomBytes(4).toString("hex")}`);
  writeFileSync(file, "");
  return () => rmSync(file, { force: true });
}

/** True when a process with this PID exists (EPERM: it exists but is not ours). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** True when a live process holds a lease on the version; leases of dead processes are removed. */
export function hasReaders(viewsDir: string, version: number): boolean {
  let names: string[];
  try {
    names = readdirSync(leaseDir(viewsDir));
  } catch {
    return false;
  }
  let held = false;
  for (const n of names) {
    const [v, pid] = n.split(".");
    if (v !== `v${version}`) continue;
    if (processAlive(Number(pid))) held = true;
    else rmSync(join(leaseDir(viewsDir), n), { force: true });
  }
  return held;
}
