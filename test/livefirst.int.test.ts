import { describe, it, expect } from "vitest";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { getPriority } from "node:os";
import { TestEnv, waitFor } from "./support/env.js";
import { writeProcessor } from "./support/processors.js";
import { LogSubscription, type LogBatch } from "../src/log/index.js";
import { deployModule } from "../src/processors/index.js";
import { LiveFirst } from "../src/processors/liveFirst.js";
import { readCheckpoint } from "../src/views/index.js";

const V1 = resolve("examples/orders/orders_by_user.ts");

/** The nice value of every thread of this process, from /proc (Linux). */
function threadNices(): number[] {
  return readdirSync("/proc/self/task").flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      // Fields after the command name in parentheses: state is field 3, nice field 19.
      return [Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16])];
    } catch {
      return []; // the thread ended meanwhile
    }
  });
}

/**
 * Threads already lowered before the rebuild under test: v1's thread hears "foreground" just after its
 * catch-up, so on a loaded machine it may still be lowered when v1 goes live. Waits for it (else counts).
 */
async function settledLowered(base: number): Promise<number> {
  const count = () => threadNices().filter((n) => n > base).length;
  return waitFor(() => (count() === 0 ? { n: 0 } : false), 5000, "v1's thread back at the worker's priority").then(
    (r) => r.n,
    () => count(), // threads of others, lowered for good: counted out
  );
}

/**
 * v1 live on 2,000 orders, then a v2 whose handler runs `trap` first and holds at event `holdAt` until
 * the test lets go: counts this process's lowered threads (beyond those lowered before) while v2 is held
 * (once `ready(dir of v2's code)` says so) and after it caught up; checks v2 ends at the head.
 */
async function heldRebuild(env: TestEnv, seed: number, trap: string, holdAt: number, ready: (dir: string) => boolean): Promise<{ during: number; after: number; lowerRebuilds: boolean }> {
  await env.appendOrders(2000, seed);
  await env.startWorker();
  await deployModule(env.nc, env.spec, V1);
  await env.waitForRecord("orders_by_user", (r) => r.live === 1);
  const base = getPriority(process.pid);
  const before = await settledLowered(base);
  const lowered = () => threadNices().filter((n) => n > base).length - before;
  const file = writeProcessor(`
import { existsSync, writeFileSync } from "node:fs";
export default {
  name: "orders_by_user",
  subjects: ["order.*"],
  schema: ["CREATE TABLE seen (seq INTEGER PRIMARY KEY)"],
  apply(e, ctx) {
    ${trap}
    if (e.seq === ${holdAt}) while (existsSync("MARK")) {}
    ctx.db.prepare("INSERT INTO seen (seq) VALUES (?)").run(e.seq);
  },
};
`);
  const dir = dirname(file);
  const mark = join(dir, "hold");
  writeFileSync(mark, "");
  writeFileSync(file, readFileSync(file, "utf8").replace('"MARK"', JSON.stringify(mark)).replaceAll('"CRASHED"', JSON.stringify(join(dir, "crashed"))));
  const probe = await LiveFirst.create();
  await deployModule(env.nc, env.spec, file);
  const f2 = env.dataDir.viewFile("orders_by_user", 2);
  await waitFor(() => ready(dir) && existsSync(f2) && (readCheckpoint(f2) ?? 0) >= holdAt - 100, 20_000, "v2 applying up to the held event");
  const during = lowered();
  rmSync(mark);
  await env.waitForRecord("orders_by_user", (r) => r.versions["2"]?.state === "caught-up" || r.live === 2);
  // The thread hears "foreground" after the catch-up: give the message a moment.
  const after = await waitFor(() => (lowered() === 0 ? { n: 0 } : false), 5000, "the rebuild thread back at the worker's priority").then((r) => r.n, () => lowered());
  expect(readCheckpoint(f2)).toBe(2000);
  return { during, after, lowerRebuilds: probe.lowerRebuilds };
}

describe("live versions first", () => {
  it("a rebuild's apply thread runs at lower priority until it catches up, then at the worker's again", async () => {
    await using env = await TestEnv.start();
    const r = await heldRebuild(env, 171, "", 1000, () => true);
    if (r.lowerRebuilds) {
      expect(r.during).toBe(1);
      expect(r.after).toBe(0);
    } else {
      // Where a thread could not get its priority back, rebuilds are not lowered at all.
      expect(r.during).toBe(0);
    }
  });

  it("a rebuild thread that crashed is restarted at lower priority, and goes back to the worker's at catch-up", async () => {
    await using env = await TestEnv.start();
    // v2's thread dies once at event 800, then (restarted from its checkpoint) holds at event 1,500.
    const r = await heldRebuild(env, 173, `if (e.seq === 800 && !existsSync("CRASHED")) { writeFileSync("CRASHED", ""); process.exit(7); }`, 1500, (dir) => existsSync(join(dir, "crashed")));
    expect(r.during).toBe(r.lowerRebuilds ? 1 : 0);
    expect(r.after).toBe(0);
  });

  it("setWindow changes the pull size mid-read, and every event still arrives once, in order", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(30_000, 172);
    // Pull requests are plain NATS messages: a second subscriber on their subject sees each one's batch size.
    const pulls: number[] = [];
    const tap = env.nc.subscribe(`$JS.API.CONSUMER.MSG.NEXT.${env.spec.stream}.>`, {
      callback: (_e, m) => void pulls.push((JSON.parse(new TextDecoder().decode(m.data)) as { batch: number }).batch),
    });
    const seqs: number[] = [];
    const digest = createHash("sha256");
    let switchedAt = -1;
    let grownAt = -1;
    let sub: LogSubscription<LogBatch> | undefined;
    const done = new Promise<void>((res) => {
      void LogSubscription.open(env.js, { stream: env.spec.stream, prefix: env.spec.prefix, prefetch: 4000, limits: { maxEvents: 500 } }, (b) => {
        for (const e of b.events) {
          seqs.push(e.seq);
          digest.update(`${e.seq}:${e.type}:${new TextDecoder().decode(e.data)}\n`);
        }
        if (switchedAt < 0 && seqs.length >= 5000) {
          switchedAt = pulls.length;
          sub!.setWindow(200);
        } else if (switchedAt >= 0 && grownAt < 0 && seqs.length >= 20_000) {
          grownAt = pulls.length;
          sub!.setWindow(4000);
        }
        if (seqs.length === events.length) res();
      }).then((s) => (sub = s));
    });
    await done;
    await sub!.stop();
    tap.unsubscribe();
    const expected = createHash("sha256");
    events.forEach((e, i) => expected.update(`${i + 1}:${e.type}:${JSON.stringify(e.data)}\n`));
    expect(digest.digest("hex")).toBe(expected.digest("hex"));
    expect(seqs).toEqual(events.map((_, i) => i + 1));
    // The tap hears pulls a little after they were sent, so the phases are found in the pulls themselves:
    // large pulls first, then only small ones (at most the window, never one message at a time: at least
    // half of it), then large ones again.
    const firstSmall = pulls.findIndex((b) => b <= 200);
    const lastSmall = pulls.length - 1 - [...pulls].reverse().findIndex((b) => b <= 200);
    expect(firstSmall).toBeGreaterThan(0);
    expect(Math.max(...pulls.slice(0, firstSmall))).toBeGreaterThan(1000);
    const small = pulls.slice(firstSmall, lastSmall + 1);
    expect(small.length).toBeGreaterThan(10);
    expect(Math.max(...small)).toBeLessThanOrEqual(200);
    expect(Math.min(...small)).toBeGreaterThanOrEqual(100);
    expect(Math.max(...pulls.slice(lastSmall + 1))).toBeGreaterThan(1000);
    expect(switchedAt).toBeGreaterThanOrEqual(0);
    expect(grownAt).toBeGreaterThan(switchedAt);
  });
});
