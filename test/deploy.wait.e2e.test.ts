import { describe, it, expect } from "vitest";
import { TestEnv } from "./support/env.js";
import { appendEvents } from "../src/log/index.js";
import { writeProcessor } from "./support/processors.js";
import { kappaAsync } from "./support/cli.js";

/** Counts orders per user, with deterministic busy work per event so the build takes a few seconds. */
const SLOW = writeProcessor(`
export default {
  name: "slow_orders",
  subjects: ["order.placed"],
  schema: ["CREATE TABLE totals (user_id TEXT PRIMARY KEY, orders INTEGER NOT NULL)"],
  apply: (e, ctx) => {
    let x = 0;
    for (let i = 0; i < 250000; i++) x = (x + i) % 7;
    ctx.db.prepare("INSERT INTO totals VALUES (?, 1) ON CONFLICT (user_id) DO UPDATE SET orders = orders + 1 + ?").run(e.data.user, x - x);
  },
};
`);

describe("deploy --wait off a terminal", () => {
  it("prints plain progress lines a tenth apart, the schema versions its code cannot upcast as the build meets them, and a final caught-up line into a pipe", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(1500);
    await appendEvents(env.nc, env.spec, [{ type: "order.placed", id: "v2", json: JSON.stringify({ user: "u1" }), schemaVersion: 2 }]);
    await env.appendOrders(1500, 2);
    const placed = Number((await env.jsm.streams.info(env.spec.stream)).state.last_seq);
    await env.startWorker();
    const started = Date.now();
    // stderr is a pipe here: no progress bar, plain lines.
    const r = await kappaAsync(["--nats", env.nats.url, "--data-dir", env.dataDir.root, "deploy", SLOW, "--wait"]);
    const took = Date.now() - started;
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/[\r\x1b]/);
    const lines = r.stderr.trim().split("\n");
    const progressLines = lines.filter((l) => !l.startsWith("warning:"));
    const progress = lines.map((l) => /^slow_orders v1: ([\d,]+)\/([\d,]+) events \((\d+)%\)/.exec(l)).filter((m) => m !== null);
    const num = (s: string) => Number(s.replace(/,/g, ""));
    // The last line says it is done, with the whole count.
    expect(progressLines.at(-1)).toMatch(new RegExp(`^slow_orders v1: caught up — ${placed.toLocaleString("en-US")}/${placed.toLocaleString("en-US")} events \\(100%\\) in [\\d.]+ s$`));
    expect(progress.length).toBeGreaterThanOrEqual(2);
    // Not a line per poll: at most one per tenth (and the first), plus one per 5 s.
    expect(progress.length).toBeLessThanOrEqual(11 + Math.ceil(took / 5000));
    const done = progress.map((m) => num(m[1]!));
    for (let i = 1; i < done.length; i++) {
      expect(done[i]!).toBeGreaterThanOrEqual(done[i - 1]!);
      // A tenth apart, unless 5 s passed in between (possible only when the whole wait took that long).
      if (took < 5000) expect(done[i]! - done[i - 1]!).toBeGreaterThanOrEqual(placed / 10);
    }
    expect(r.stdout).toMatch(/slow_orders: v1 caught up — live/);
    // Named by the build, where deploy used to read the whole log first.
    const warnings = lines.filter((l) => l.startsWith("warning:"));
    expect(warnings).toHaveLength(1);
    // "1 event, " only if the build got there before the worker's next report, at its very end.
    expect(warnings[0]).toMatch(/^warning: the log holds schema version 2 of order\.placed \((1 event, )?first at seq 1501\) and slow_orders has no upcaster for it \(newest it knows: v1\) — its handlers get that shape unchanged; declare upcasters: \{ "order\.placed": \[v1ToV2\] \}$/);
  }, 60_000);
});
