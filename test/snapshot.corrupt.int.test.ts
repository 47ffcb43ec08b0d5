import { describe, it, expect } from "vitest";
import { join, resolve } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import Database from "better-sqlite3";
import { TestEnv, waitFor } from "./support/env.js";
import { kappaAsync } from "./support/cli.js";
import { referenceTotals, referenceDigest } from "./support/reference.js";
import { deployModule, SnapshotStore } from "../src/processors/index.js";
import { DataDir, digestFile, readCheckpoint } from "../src/views/index.js";
import { generateOrders } from "../examples/orders/generate.js";

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const name = (checkpoint: number) => `orders_by_user/v1/${String(checkpoint).padStart(12, "0")}`;

describe("a snapshot that passes the object store's digest but is no usable view file", () => {
  it("is checked before use, marked bad, and passed over: the new replica falls back to an older snapshot, then to a full replay, and builds the reference digest", async () => {
    await using env = await TestEnv.start();
    const events = [...generateOrders(5000, 1201)];
    await env.append(events.slice(0, 3000));
    const dirs = ["w1", "w2", "w3", "w4"].map((w) => new DataDir(join(env.dir, w)));
    const files = dirs.map((d) => d.viewFile("orders_by_user", 1));
    await env.startWorker(dirs[0], undefined, { workerId: "w1" });
    await deployModule(env.nc, env.spec, resolve("examples/orders/orders_by_user_v2.ts"));
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    await waitFor(() => readCheckpoint(files[0]!) === 3000, 30_000, "w1 at 3000");
    const store = await SnapshotStore.open(env.nc, env.spec.stream);
    const good = await store.take(files[0]!, "orders_by_user", 1, 10, { worker: "w1" });
    expect(good).toMatchObject({ checkpoint: 3000, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    await env.append(events.slice(3000));
    await waitFor(() => readCheckpoint(files[0]!) === 5000, 30_000, "w1 at 5000");

    // Planted snapshots, newer than the good one, each stored whole (the object store's digest matches its bytes).
    const real = join(env.dir, "real.sqlite");
    const w1db = new Database(files[0]!, { readonly: true });
    w1db.prepare("VACUUM INTO ?").run(real);
    w1db.close();
    const realBytes = readFileSync(real);
    const foreign = join(env.dir, "foreign.sqlite");
    const f = new Database(foreign);
    f.exec("CREATE TABLE totals (user_id TEXT PRIMARY KEY, orders INTEGER, amount REAL); INSERT INTO totals VALUES ('mallory', 999, 1e9)");
    f.close();
    const foreignBytes = readFileSync(foreign);
    const truncated = realBytes.subarray(0, Math.floor(realBytes.length / 2));
    const garbage = randomBytes(64 * 1024);
    const meta = (checkpoint: number, sha?: string) => ({ processor: "orders_by_user", version: "1", checkpoint: String(checkpoint), code_hash: good.codeHash, created_at: new Date().toISOString(), ...(sha ? { sha256: sha } : {}) });
    const planted: [number, Buffer, string | undefined, RegExp][] = [
      [4800, foreignBytes, sha256(foreignBytes), /not a Kappa view file: it has no kappa_meta table/], // Kappa's hash matches: only the content check sees it
      [4600, realBytes, "0".repeat(64), /SHA-256 .* is not the 000000000000 recorded when it was taken/],
      [4400, realBytes, sha256(realBytes), /its checkpoint is 5000, not the 4400/],
      [4200, truncated, sha256(truncated), /quick_check|malformed|not a readable SQLite file/], // a truncated SQLite file
      [4000, garbage, undefined, /not a readable SQLite file: file is not a database/], // no hash recorded (an older Kappa)
    ];
    for (const [cp, bytes, sha] of planted) await store.os.putBlob({ name: name(cp), metadata: meta(cp, sha) }, bytes);
    rmSync(real);

    const lines: string[] = [];
    const w2 = await env.startWorker(dirs[1], (l) => lines.push(l), { workerId: "w2" });
    await waitFor(() => readCheckpoint(files[1]!) === 5000, 30_000, "w2 at 5000");
    expect(w2.runners.get("orders_by_user/1")!.restoredFrom).toBe(3000);
    const reference = referenceDigest(referenceTotals(events, true));
    expect(digestFile(files[1]!).digest).toBe(reference);
    expect(digestFile(files[0]!).digest).toBe(reference);
    // Each bad one is marked, with why and by whom; the good one is not.
    const listed = new Map((await store.list("orders_by_user", 1)).map((s) => [s.checkpoint, s]));
    for (const [cp, , , why] of planted) {
      expect(listed.get(cp)?.bad, `snapshot at ${cp}`).toMatchObject({ by: "w2", reason: expect.stringMatching(why) });
      expect(lines.join("\n")).toContain(`snapshot ${name(cp)} is unusable`);
    }
    expect(listed.get(3000)?.bad).toBeUndefined();

    // Nobody tries a marked one again.
    const lines3: string[] = [];
    const w3 = await env.startWorker(dirs[2], (l) => lines3.push(l), { workerId: "w3" });
    await waitFor(() => readCheckpoint(files[2]!) === 5000, 30_000, "w3 at 5000");
    expect(w3.runners.get("orders_by_user/1")!.restoredFrom).toBe(3000);
    expect(lines3.join("\n")).not.toMatch(/unusable/);

    // The listing shows them.
    const out = await kappaAsync(["--nats", env.nats.url, "--json", "snapshot", "orders_by_user", "--list"]);
    expect(out.code, out.stderr).toBe(0);
    const shown = JSON.parse(out.stdout) as { snapshots: { checkpoint: number; bad?: { reason: string } }[] };
    expect(shown.snapshots.filter((s) => s.bad).map((s) => s.checkpoint)).toEqual([4800, 4600, 4400, 4200, 4000]);

    // With no usable snapshot left, a new replica replays the whole log.
    await store.markBad(good.name, "marked by the test");
    const w4 = await env.startWorker(dirs[3], undefined, { workerId: "w4" });
    await waitFor(() => readCheckpoint(files[3]!) === 5000, 30_000, "w4 at 5000");
    expect(w4.runners.get("orders_by_user/1")!.restoredFrom).toBeUndefined();
    expect(digestFile(files[3]!).digest).toBe(reference);
  }, 120_000);
});
