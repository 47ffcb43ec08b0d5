import { describe, it, expect, afterAll } from "vitest";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// scripts/setup.sh in a scratch copy of the project (only what it reads), so npm and .tools/ of the checkout are untouched.
const root = mkdtempSync(join(tmpdir(), "kappa-setup-"));
mkdirSync(join(root, "scripts"));
mkdirSync(join(root, "src/log"), { recursive: true });
mkdirSync(join(root, "node_modules"));
copyFileSync("scripts/setup.sh", join(root, "scripts/setup.sh"));
copyFileSync("src/log/serverVersion.ts", join(root, "src/log/serverVersion.ts"));
writeFileSync(join(root, "package-lock.json"), "{}");
writeFileSync(join(root, "node_modules/.package-lock.json"), "{}");
utimesSync(join(root, "package-lock.json"), new Date(0), new Date(0)); // npm deps count as installed
const old = join(root, "old-nats-server");
writeFileSync(old, "#!/bin/sh\necho 'nats-server: v2.9.10'\n", { mode: 0o755 });
afterAll(() => rmSync(root, { recursive: true, force: true }));

function setup(env: Record<string, string>) {
  return spawnSync("bash", [join(root, "scripts/setup.sh")], { encoding: "utf8", env: { PATH: process.env.PATH ?? "", ...env }, timeout: 30_000 });
}

describe("scripts/setup.sh", () => {
  it("stops at a too-old KAPPA_NATS_SERVER with one line, without fetching another behind the user's back", () => {
    const r = setup({ KAPPA_NATS_SERVER: old });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(/KAPPA_NATS_SERVER=.* is not a nats-server 2\.12\.0 or newer \(found: 2\.9\.10\); unset it/)]);
    expect(existsSync(join(root, ".tools/apt"))).toBe(false);
  });

  it("uses a recent enough KAPPA_NATS_SERVER as it is", () => {
    const bin = process.env.KAPPA_NATS_SERVER;
    if (!bin) return;
    const r = setup({ KAPPA_NATS_SERVER: bin });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(`at ${bin} (Kappa needs 2.12.0 or newer)`);
    expect(existsSync(join(root, ".tools/apt"))).toBe(false);
  });
});
