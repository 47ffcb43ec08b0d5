import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import Database from "better-sqlite3";
import { TestEnv, waitFor } from "./support/env.js";
import { WorkerProcess } from "./support/workerProcess.js";
import { deployModule, replayProcessor } from "../src/processors/index.js";
import { digestFile, readCheckpoint } from "../src/views/index.js";
import { seededRandom } from "../src/processors/random.js";
import { generatePageViews } from "../examples/pageviews/generate.js";

const PAGEVIEWS = resolve("examples/pageviews/pageviews.ts");

function stateRows(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return Number(db.prepare("SELECT count(*) FROM kappa_state").pluck().get());
  } finally {
    db.close();
  }
}

describe("windows and synopses in a running processor", () => {
  it("survive SIGKILLs mid-window and replay twice into new versions with identical digests; state stays bounded", async () => {
    await using env = await TestEnv.start();
    const views = [...generatePageViews(24_000, 5)];
    await env.append(views.slice(0, 12_000));
    await deployModule(env.nc, env.spec, PAGEVIEWS);
    const f = (v: number) => env.dataDir.viewFile("pageviews", v);
    const rnd = seededRandom("window-kills");
    for (let i = 0; i < 4; i++) {
      const before = readCheckpoint(f(1)) ?? 0;
      // Small batches: each run commits a little, so every kill lands mid-stream.
      const w = WorkerProcess.start(env.server.url, env.dataDir.root, ["--batch-events", "500"]);
      try {
        // Kill only once this run has committed something, a random moment later (kill() checks it died).
        await waitFor(() => (readCheckpoint(f(1)) ?? 0) > before, 60_000, `progress in run ${i}`);
        await new Promise((r) => setTimeout(r, rnd() * 100));
        expect(w.exited, w.output).toBe(false); // the kill below lands on a running worker
      } finally {
        await w.kill("SIGKILL");
      }
    }
    expect(readCheckpoint(f(1)) ?? 0).toBeLessThan(12_000); // the kills landed mid-stream
    await env.startWorker();
    await waitFor(() => readCheckpoint(f(1)) === 12_000, 60_000, "first half applied");
    const stateAtHalf = stateRows(f(1));
    await env.append(views.slice(12_000));
    await waitFor(() => readCheckpoint(f(1)) === 24_000, 60_000, "second half applied");
    const stateAtEnd = stateRows(f(1));
    expect(stateAtEnd).toBeLessThan(stateAtHalf * 1.5 + 50); // the log doubled; open windows and sketches did not

    await replayProcessor(env.nc, env.spec, "pageviews", { from: "start" });
    await replayProcessor(env.nc, env.spec, "pageviews", { from: "start" });
    await waitFor(() => readCheckpoint(f(2)) === 24_000 && readCheckpoint(f(3)) === 24_000, 120_000, "replays done");
    const d1 = digestFile(f(1));
    expect(d1.tables.map((t) => t.table)).toEqual(expect.arrayContaining(["requests_per_minute", "unique_users_5m", "latency_last_100", "session_sample", "top_pages"]));
    expect(d1.tables.find((t) => t.table === "session_sample")!.rows).toBe(100);
    expect(d1.tables.find((t) => t.table === "top_pages")!.rows).toBe(10);
    expect(digestFile(f(2)).digest).toBe(d1.digest);
    expect(digestFile(f(3)).digest).toBe(d1.digest);
    // Window and sketch state, and the late events, are compared too.
    expect(d1.platform.tables.map((t) => t.table)).toEqual(["kappa_late_events", "kappa_state"]);
    expect(digestFile(f(2)).platform).toEqual(d1.platform);
    expect(digestFile(f(3)).platform).toEqual(d1.platform);
  }, 300_000);
});
