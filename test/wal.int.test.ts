import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { statSync } from "node:fs";
import { resolve } from "node:path";
import Database from "better-sqlite3";
import { TestEnv, waitFor } from "./support/env.js";
import { deployModule } from "../src/processors/index.js";
import { readCheckpoint, WAL_LIMIT_BYTES } from "../src/views/index.js";

const V1 = resolve("examples/orders/orders_by_user.ts");

let env: TestEnv;
let file: string;
let head = 0;

const walBytes = () => {
  try {
    return statSync(file + "-wal").size;
  } catch {
    return 0;
  }
};

/** A reader holding one snapshot until released, as a long `kappa verify` does. */
function openReader(): () => void {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.exec("BEGIN");
  db.prepare("SELECT count(*) FROM totals").get();
  return () => {
    db.exec("COMMIT");
    db.close();
  };
}

async function appendAndApply(n: number, seed: number): Promise<void> {
  const evs = await env.appendOrders(n, seed);
  head += evs.length;
  await waitFor(() => readCheckpoint(file) === head, 60_000, `checkpoint ${head}`);
}

beforeAll(async () => {
  env = await TestEnv.start();
  await env.appendOrders(100, 1);
  head = 100;
  await env.startWorker();
  await deployModule(env.nc, env.spec, V1);
  await env.waitForRecord("orders_by_user", (r) => r.live === 1);
  file = env.dataDir.viewFile("orders_by_user", 1);
  await waitFor(() => readCheckpoint(file) === head, 30_000, "first events applied");
}, 60_000);

afterAll(async () => {
  await env?.close();
});

/**
 * After a long read ends, the -wal file must be back under the limit within the time docs/guarantees.md gives:
 * the check runs once a second, and the first one after the read may still meet a short reader on an older
 * snapshot, so two checks and a second to spare (1.1–1.4 s measured with overlapping readers, load 9 on 2 cores).
 */
const SHRINK_WITHIN_MS = 3000;

describe("the WAL shrinks once readers allow", () => {
  it("grows past its limit under a long read, and comes back under the limit within three seconds after the read ends", async () => {
    const release = openReader();
    let grown = 0;
    try {
      for (let i = 0; i < 10 && walBytes() <= WAL_LIMIT_BYTES * 1.5; i++) await appendAndApply(5000, 100 + i);
      grown = walBytes();
      expect(grown).toBeGreaterThan(WAL_LIMIT_BYTES); // the long read pinned it: the scenario is real
    } finally {
      release();
    }
    await waitFor(() => walBytes() <= WAL_LIMIT_BYTES, SHRINK_WITHIN_MS, `WAL back under ${WAL_LIMIT_BYTES} bytes within ${SHRINK_WITHIN_MS} ms (was ${grown})`);
  }, 120_000);

  it("grows under a long read while short readers overlap without a gap, and shrinks within three seconds after the long read ends while they go on", async () => {
    const held: (() => void)[] = [openReader()];
    // A new reader every 50 ms, each released after the next one started: never a moment without a reader.
    const churn = setInterval(() => {
      held.push(openReader());
      while (held.length > 2) held.shift()!();
    }, 50);
    const long = openReader();
    let grown = 0;
    try {
      try {
        for (let i = 0; i < 10 && walBytes() <= WAL_LIMIT_BYTES * 1.5; i++) await appendAndApply(5000, 200 + i);
        grown = walBytes();
        expect(grown).toBeGreaterThan(WAL_LIMIT_BYTES); // it did grow past the limit: the shrink below is real
      } finally {
        long();
      }
        await waitFor(() => walBytes() <= WAL_LIMIT_BYTES, SHRINK_WITHIN_MS, `WAL under ${WAL_LIMIT_BYTES} bytes within ${SHRINK_WITHIN_MS} ms while short readers continue (was ${grown}, at ${walBytes()})`);
    } finally {
      clearInterval(churn);
      for (const r of held.splice(0)) r();
    }
  }, 120_000);
});
