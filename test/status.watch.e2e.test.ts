import { describe, it, expect } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { TestEnv } from "./support/env.js";
import { waitFor } from "./support/env.js";
import { cmdlineOf, descendants, pidAlive, readStat, signalSame } from "./support/procs.js";
import { deployModule } from "../src/processors/index.js";

const BIN = resolve("bin/kappa.js");
const V1 = resolve("examples/orders/orders_by_user.ts");
const REDRAW = "\x1b[H\x1b[J";

/** Collects a child's stdout and waits for it to satisfy a check. */
function output(child: ChildProcess): { text: () => string; until: (check: (s: string) => boolean, what: string) => Promise<void> } {
  let text = "";
  // Colours off for matching: the table is coloured on a terminal.
  child.stdout!.on("data", (b: Buffer) => (text += b.toString().replace(/\x1b\[[0-9;]*m/g, "")));
  return {
    text: () => text,
    until: (check, what) =>
      new Promise((res, rej) => {
        const started = Date.now();
        const t = setInterval(() => {
          if (check(text)) {
            clearInterval(t);
            res();
          } else if (Date.now() - started > 15_000) {
            clearInterval(t);
            rej(new Error(`timed out waiting for ${what}; output so far: ${JSON.stringify(text.slice(-600))}`));
          }
        }, 50);
      }),
  };
}

/** Its exit code; bounded, so a child that does not stop fails the test with its cleanup run (a test timeout skips `finally`). */
const exited = (child: ChildProcess, ms = 15_000) =>
  new Promise<number | null>((res, rej) => {
    if (child.exitCode !== null) return res(child.exitCode);
    const t = setTimeout(() => rej(new Error(`pid ${child.pid} did not exit within ${ms / 1000} s`)), ms);
    child.once("exit", (c) => {
      clearTimeout(t);
      res(c);
    });
  });

function stop(child: ChildProcess): void {
  if (child.pid && child.exitCode === null && pidAlive(child.pid)) child.kill("SIGKILL");
}

/** The kappa process script(1) runs on its terminal: a child of script's, found in /proc by script's PID. */
async function kappaUnder(script: ChildProcess): Promise<{ pid: number; start: number }> {
  return waitFor(() => {
    const pid = descendants(script.pid!).find((p) => cmdlineOf(p).includes(BIN));
    const start = pid === undefined ? undefined : readStat(pid)?.start;
    return pid !== undefined && start !== undefined ? { pid, start } : undefined;
  }, 15_000, "kappa started under script");
}

describe("kappa status --watch", () => {
  it("redraws the table in place on a terminal (a pseudo-terminal from `script`), follows new events, and stops on Ctrl-C with exit 0", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(100, 5);
    await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    // `exec`: the shell script(1) starts must not stay between the terminal and kappa. A non-interactive
    // dash (Debian's /bin/sh, used when SHELL is unset, as on CI) dies of the Ctrl-C itself with 130.
    const cmd = `exec ${process.execPath} ${BIN} --nats ${env.server.url} --data-dir ${env.dataDir.root} status --watch 0.3`;
    // script(1) runs the command on a new pseudo-terminal and copies what it draws to our pipe.
    const child = spawn("script", ["-qfec", cmd, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, TERM: "xterm", SHELL: "/bin/sh" } });
    let kappaProc: { pid: number; start: number } | undefined;
    try {
      const out = output(child);
      kappaProc = await kappaUnder(child);
      await out.until((s) => s.split(REDRAW).length >= 3 && /orders_by_user/.test(s), "two redraws");
      const frames = out.text().split(REDRAW).slice(1);
      expect(frames[0]).toMatch(/log head: 100/);
      expect(frames[0]).toMatch(/│ \* │ v1 .*live.*│ 100 /);
      expect(frames[0]).toMatch(/Ctrl-C stops/);
      await env.appendOrders(50, 6);
      await out.until((s) => /log head: 150/.test(s.split(REDRAW).at(-1) ?? ""), "a redraw with the new events");
      expect(out.text().split(REDRAW).at(-1)).toMatch(/│ \* │ v1 .*live.*│ 150 /);
      child.stdin!.write("\x03"); // Ctrl-C, turned into SIGINT by the terminal
      expect(await exited(child)).toBe(0);
      expect(pidAlive(kappaProc.pid) && readStat(kappaProc.pid)?.start === kappaProc.start).toBe(false); // kappa itself exited
      expect(out.text()).toMatch(/\x1b\[\?25h/); // the cursor is shown again
    } finally {
      // kappa by its own PID: killing script alone would leave it running on an orphaned terminal.
      if (kappaProc) signalSame(kappaProc, "SIGKILL");
      stop(child);
    }
  });

  it("writes plain lines, no escape codes, when stdout is not a terminal; SIGTERM stops it with exit 0", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(80, 7);
    await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    const child = spawn(process.execPath, [BIN, "--nats", env.server.url, "--data-dir", env.dataDir.root, "status", "--watch", "0.3"], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      const out = output(child);
      await out.until((s) => (s.match(/orders_by_user v1\*/g) ?? []).length >= 2, "two rounds of lines");
      expect(out.text()).not.toMatch(/\x1b/);
      const lines = out.text().trim().split("\n");
      expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d log head 80$/);
      expect(lines[1]).toMatch(/^\d\d:\d\d:\d\d orders_by_user v1\* live checkpoint=80 lag=0 eps=[\d.]+$/);
      child.kill("SIGTERM");
      expect(await exited(child)).toBe(0);
    } finally {
      stop(child);
    }
  });
});
