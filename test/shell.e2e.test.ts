import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { kappa } from "./support/cli.js";
import { deployModule } from "../src/processors/index.js";
import { completer } from "../src/cli/shell/repl.js";
import { referenceTotals } from "./support/reference.js";
import type { OrderEvent } from "../examples/orders/generate.js";

const ORDERS = resolve("examples/orders/orders_by_user.ts");

let env: TestEnv;
let events: OrderEvent[];
let base: string[];

beforeAll(async () => {
  env = await TestEnv.start();
  events = await env.appendOrders(500, 3);
  await env.startWorker();
  await deployModule(env.nc, env.spec, ORDERS);
  await env.waitForRecord("orders_by_user", (r) => r.live === 1);
  base = ["--nats", env.server.url, "--data-dir", env.dataDir.root];
}, 60_000);

afterAll(async () => {
  await env?.close();
});

describe("kappa shell", () => {
  it("runs statements and dot-commands from stdin, read-only, and keeps going after an error", () => {
    const script = [
      ".tables",
      ".schema totals",
      "SELECT count(*) AS users",
      "  FROM totals;",
      ".mode json",
      "SELECT user_id, orders, amount FROM totals ORDER BY user_id LIMIT 3;",
      "DELETE FROM totals;",
      ".mode csv",
      ".timer on",
      "SELECT sum(orders) AS orders FROM orders_by_user.totals;",
      ".versions",
      ".nope",
      ".quit",
      "SELECT 'never reached';",
    ].join("\n");
    const r = kappa([...base, "shell", "orders_by_user"], { input: script + "\n" });
    expect(r.code, r.stderr).toBe(0);
    const ref = referenceTotals(events);
    expect(r.stdout).toMatch(/^totals$/m);
    expect(r.stdout).toContain("CREATE TABLE totals (user_id TEXT PRIMARY KEY, orders INTEGER NOT NULL, amount REAL NOT NULL);");
    expect(r.stdout).toMatch(new RegExp(`│ ${ref.length}\\s+│|\\| ${ref.length}\\s+\\||\\b${ref.length}\\b`));
    const json = /\[\s*\{[\s\S]*?\}\s*\]/.exec(r.stdout)![0];
    expect(JSON.parse(json)).toEqual(ref.slice(0, 3));
    expect(r.stderr).toMatch(/error: .*read-only|error: .*only SELECT/);
    expect(r.stdout).toContain(`orders\n${ref.reduce((n, x) => n + x.orders, 0)}\n`);
    expect(r.stdout).toMatch(/Run Time: [\d.]+ ms \(orders_by_user v1 at seq 500\)/);
    expect(r.stdout).toMatch(/orders_by_user.*v1.*500.*live/);
    expect(r.stderr).toMatch(/unknown command \.nope/);
    expect(r.stdout).not.toContain("never reached");
  });

  it("attaches every live view by name without a processor", () => {
    const r = kappa([...base, "shell"], { input: ".tables\nSELECT count(*) AS n FROM orders_by_user.totals;\n" });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^orders_by_user\.totals$/m);
    expect(r.stdout).toContain(String(referenceTotals(events).length));
  });

  it("completes table names and dot-commands", () => {
    const c = completer([{ schema: "orders_by_user", name: "totals", sql: "" }]);
    expect(c("SELECT * FROM tot")).toEqual([["totals"], "tot"]);
    expect(c("SELECT * FROM orders_by_user.t")).toEqual([["orders_by_user.totals"], "orders_by_user.t"]);
    expect(c(".ver")).toEqual([[".versions"], ".ver"]);
  });

  it("completes with Tab and keeps history in a real terminal (tmux)", async () => {
    const sock = `kappa-shell-${process.pid}`;
    const tmux = (...args: string[]) => execFileSync("tmux", ["-L", sock, ...args], { encoding: "utf8" });
    const cmd = [process.execPath, resolve("bin/kappa.js"), ...base, "shell", "orders_by_user"].map((a) => `'${a}'`).join(" ");
    tmux("new-session", "-d", "-x", "200", "-y", "50");
    tmux("set-option", "-g", "remain-on-exit", "on");
    tmux("respawn-pane", "-k", cmd);
    const serverPid = Number(tmux("display-message", "-p", "#{pid}").trim());
    try {
      const screen = () => tmux("capture-pane", "-p");
      await waitFor(() => /kappa>/.test(screen()), 20_000, "the prompt").catch((err) => {
        throw new Error(`${(err as Error).message}; the terminal shows:\n${screen()}`);
      });
      tmux("send-keys", "SELECT count(*) AS n FROM tot", "Tab");
      await waitFor(() => screen().includes("FROM totals"), 5000, "Tab to complete the table name");
      tmux("send-keys", "-H", "3b"); // ";" alone would be tmux's own command separator
      tmux("send-keys", "Enter");
      await waitFor(() => screen().includes(String(referenceTotals(events).length)), 10_000, "the answer").catch((err) => {
        throw new Error(`${(err as Error).message}; the terminal shows:\n${screen()}`);
      });
      tmux("send-keys", "C-d");
      await waitFor(() => existsSync(join(env.dataDir.root, "shell_history")), 10_000, "the history file");
      expect(readFileSync(join(env.dataDir.root, "shell_history"), "utf8")).toContain("SELECT count(*) AS n FROM totals;");
      // A new shell recalls it with the Up arrow.
      tmux("respawn-pane", "-k", cmd);
      await waitFor(() => /kappa>\s*$/.test(screen().trimEnd()), 20_000, "the second prompt");
      tmux("send-keys", "Up");
      await waitFor(() => /kappa> SELECT count\(\*\) AS n FROM totals;/.test(screen()), 5000, "Up to recall the last statement");
      tmux("send-keys", "C-d");
    } finally {
      try {
        process.kill(serverPid, "SIGKILL");
      } catch {
        // the session ended and the server with it
      }
    }
  }, 40_000);
});
