import { describe, it, expect } from "vitest";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";

/** What package managers print: none of it may reach the demo's terminal (it goes to .tools/setup.log). */
const PACKAGE_MANAGER = /^(npm (warn|notice|error|ERR)|added \d+ packages?|removed \d+ packages?|up to date|changed \d+ packages?|Reading package lists|Building dependency tree|Reading state information|(Get|Hit|Ign):\d|Fetched \d|Unpacking|Selecting previously|Setting up|Preparing to unpack|Processing triggers|Need to get|After this operation|The following|W: |E: |dpkg|debconf)/m;

describe("npm run demo", () => {
  it("tells its story with one line per setup step and no package-manager output, and installs no browser", async () => {
    // Asynchronous, not spawnSync: a blocked event loop starves vitest's worker RPC ("Timeout calling
    // onTaskUpdate") on a loaded machine and fails the run even when the demo passes.
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn("bash", ["scripts/demo.sh", "--events", "500"], { timeout: 170_000, env: { ...process.env } });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      child.on("error", reject);
      child.on("close", (status) => resolve({ status, stdout, stderr }));
    });
    const out = r.stdout + r.stderr;
    expect(r.status, out.slice(-2000)).toBe(0);
    expect(out).not.toMatch(PACKAGE_MANAGER);
    expect(out).not.toMatch(/strict mode|EBADENGINE|ExperimentalWarning/);
    const setup = out.split("\n").filter((l) => l.startsWith("setup:"));
    expect(setup.length).toBeGreaterThanOrEqual(1);
    expect(setup.length).toBeLessThanOrEqual(4);
    expect(out).toMatch(/^status page: http:\/\/127\.0\.0\.1:\d+\//m);
    for (const step of ["$ kappa append --file", "$ kappa deploy", "$ kappa query orders_by_user top_users", "$ kappa rollback orders_by_user", "Demo done."]) expect(out).toContain(step);
    // Chromium is for the browser test only: the demo's scripts never install it.
    for (const f of ["scripts/demo.sh", "scripts/setup.sh", "scripts/demo.ts"]) expect(readFileSync(f, "utf8")).not.toMatch(/chromium|setup-browser/i);
    expect(readFileSync("scripts/test.sh", "utf8")).toMatch(/setup-browser\.sh/);
  });
});
