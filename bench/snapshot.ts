/**
 * `npx tsx bench/snapshot.ts [--rows N]`: what a snapshot of a big view costs the worker's main thread.
 * Builds a view-shaped SQLite file (WAL, Kappa's meta and checkpoint tables, N rows of ~150 bytes), then
 * copies it twice while a 1 ms timer samples the event loop: `VACUUM INTO` on the main thread (what
 * snapshots did before) and in the snapshot child process (what they do now). Prints the copy times and
 * the longest gap between timer ticks during each copy: while the loop is blocked, no lease renewal and
 * no heartbeat can go out. No NATS needed.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { rmSync, statSync } from "node:fs";
import Database from "better-sqlite3";
import { runSnapshotJob } from "../src/processors/snapshotJob.js";
import { scratch, removeScratch } from "./lib/env.js";
import { round } from "./lib/stats.js";

const { values: o } = parseArgs({ options: { rows: { type: "string", default: "1000000" } } });
const ROWS = Number(o.rows);

/** Runs `work` while sampling the event loop; returns how long it took and the longest gap between ticks. */
async function sampled(work: () => unknown): Promise<{ ms: number; maxGapMs: number }> {
  let last = performance.now();
  let maxGap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 1);
  await new Promise((r) => setTimeout(r, 50)); // the sampler runs before the work starts
  const t0 = performance.now();
  last = t0;
  await work();
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 5)); // a tick after the work, so a block that ends it is counted
  clearInterval(timer);
  return { ms, maxGapMs: maxGap };
}

async function main(): Promise<void> {
  const view = join(scratch, "v1.sqlite");
  const db = new Database(view);
  db.pragma("journal_mode = WAL");
  db.exec("CREATE TABLE kappa_meta (key TEXT PRIMARY KEY, value TEXT); CREATE TABLE kappa_checkpoint (id INTEGER PRIMARY KEY, seq INTEGER, events INTEGER);");
  db.exec(`INSERT INTO kappa_meta VALUES ('processor', 'bench'), ('version', '1'), ('code_hash', 'x'); INSERT INTO kappa_checkpoint VALUES (1, ${ROWS}, ${ROWS});`);
  db.exec("CREATE TABLE totals (user_id TEXT PRIMARY KEY, orders INTEGER, amount REAL, note TEXT)");
  const ins = db.prepare("INSERT INTO totals VALUES (?, ?, ?, ?)");
  const fill = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) ins.run(`u${i}`, i % 97, i * 1.25, "x".repeat(100));
  });
  for (let i = 0; i < ROWS; i += 100_000) fill(i, Math.min(ROWS, i + 100_000));
  db.pragma("wal_checkpoint(TRUNCATE)");
  const bytes = statSync(view).size;

  const inlineCopy = join(scratch, "inline.sqlite");
  const inline = await sampled(() => db.prepare("VACUUM INTO ?").run(inlineCopy));
  rmSync(inlineCopy, { force: true });
  const childCopy = join(scratch, "child.sqlite");
  const child = await sampled(() => runSnapshotJob({ op: "copy", src: view, dst: childCopy }));
  rmSync(childCopy, { force: true });
  const check = await sampled(() => runSnapshotJob({ op: "verify", path: view }));
  db.close();

  const mb = round(bytes / (1 << 20), 1);
  console.log(`view: ${ROWS.toLocaleString("en-US")} rows, ${mb} MB`);
  console.log(`VACUUM INTO on the main thread: copy ${round(inline.ms)} ms, longest event-loop gap ${round(inline.maxGapMs)} ms`);
  console.log(`copy in the snapshot process (+ SHA-256): ${round(child.ms)} ms, longest event-loop gap ${round(child.maxGapMs, 1)} ms`);
  console.log(`check in the snapshot process (SHA-256 + quick_check): ${round(check.ms)} ms, longest event-loop gap ${round(check.maxGapMs, 1)} ms`);
}

try {
  await main();
} finally {
  removeScratch();
}
