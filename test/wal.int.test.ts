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

describe("the WAL shrinks once readers allow", () => {
  it("grows past its limit under a long read, and comes back under the limit after the read ends", async () => {
    const release = openReader();
    let grown = 0;
    try {
      for (let i = 0; i < 10 && walBytes() <= WAL_LIMIT_BYTES * 1.5; i++) await appendAndApply(5000, 100 + i);
      grown = walBytes();
      expect(grown).toBeGreaterThan(WAL_LIMIT_BYTES); // the long read pinned it: the scenario is real
    } finally {
      release();
    }
    await waitFor(() => walBytes() <= WAL_LIMIT_BYTES, 10_000, `WAL back under ${WAL_LIMIT_BYTES} bytes (was ${grown})`);
  }, 120_000);

  it("shrinks while readers never pause (each overlaps the next), with writes in between", async () => {
    const held: (() => void)[] = [openReader()];
    // A new reader every 50 ms, each released after the next one started: never a moment without a reader.
    const churn = setInterval(() => {
      held.push(openReader());
      while (held.length > 2) held.shift()!();
    }, 50);
    try {
      for (let i = 0; i < 10 && walBytes() <= WAL_LIMIT_BYTES * 1.5; i++) await appendAndApply(5000, 200 + i);
      await waitFor(() => walBytes() <= WAL_LIMIT_BYTES, 10_000, `WAL under ${WAL_LIMIT_BYTES} bytes while readers continue (at ${walBytes()})`);
    } finally {
      clearInterval(churn);
      for (const r of held.splice(0)) r();
    }
  }, 120_000);
});
