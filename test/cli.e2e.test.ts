import { describe, it, expect } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { kappa } from "./support/cli.js";
import { DevProcess, pidAlive } from "./support/dev.js";
import { TestEnv, waitFor } from "./support/env.js";
import { generateOrders } from "../examples/orders/generate.js";
import { referenceTotals } from "./support/reference.js";

describe("the kappa binary, as a user runs it", () => {
  it("runs dev, appends, deploys, queries, and stops cleanly on Ctrl-C", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-e2e-"));
    const dataDir = join(dir, ".kappa");
    const k = (...args: string[]) => kappa(["--data-dir", dataDir, ...args]);
    try {
      await using dev = await DevProcess.start(dataDir);
      expect(dev.natsPid).toBeGreaterThan(0);

      // The same --id twice is stored once.
      const a1 = k("--json", "append", "order.placed", '{"order":"o1","user":"alice","product":"p1","amount":10,"quantity":1}', "--id", "o1:placed");
      const a2 = k("--json", "append", "order.placed", '{"order":"o1","user":"alice","product":"p1","amount":10,"quantity":1}', "--id", "o1:placed");
      expect(a1.code).toBe(0);
      expect(JSON.parse(a1.stdout)).toEqual({ seq: 1, duplicate: false });
      expect(JSON.parse(a2.stdout)).toEqual({ seq: 1, duplicate: true });

      // A file with one malformed line: an error naming the line, and nothing from the file is published.
      const bad = join(dir, "bad.ndjson");
      writeFileSync(bad, '{"type":"order.placed","data":{"user":"bob","amount":1}}\n{"type":"order.placed","data":{"user":"bob","amount":2}}\n{"type":"order.placed","data":{"user":"bob" "amount":3}}\n');
      const r = k("append", "--file", bad);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/line 3: invalid JSON/);
      expect(r.stderr).toMatch(/nothing was published/);
      expect(JSON.parse(k("--json", "log", "info").stdout).messages).toBe(1);

      // Many events through stdin, then deploy --wait and a query whose answer we know.
      const events = [...generateOrders(3000, 5)];
      const file = join(dir, "orders.ndjson");
      writeFileSync(file, events.map((e) => JSON.stringify(e)).join("\n"));
      const app = kappa(["--data-dir", dataDir, "append"], { input: events.map((e) => JSON.stringify(e)).join("\n") });
      expect(app.code).toBe(0);
      expect(app.stdout).toMatch(/appended 3,000 events, seq 2–3001/);
      const dep = k("deploy", resolve("examples/orders/orders_by_user.ts"), "--wait");
      expect(dep.code).toBe(0);
      expect(dep.stdout).toMatch(/v1 caught up — live/);
      const q = k("--json", "query", "orders_by_user", "SELECT user_id, orders, amount FROM totals ORDER BY user_id");
      expect(q.code).toBe(0);
      const answer = JSON.parse(q.stdout) as { processor: string; version: number; seq: number; rows: unknown[] };
      expect(answer.processor).toBe("orders_by_user");
      expect(answer.version).toBe(1);
      expect(answer.seq).toBe(3001);
      const ref = referenceTotals([{ type: "order.placed", id: "o1:placed", data: { user: "alice", amount: 10 } }, ...events]);
      expect(answer.rows).toEqual(ref);

      // The raw log from an offset, as NDJSON.
      const tail = k("log", "tail", "--from", "2", "--limit", "2");
      expect(tail.code).toBe(0);
      expect(tail.stdout.trim().split("\n").map((l) => JSON.parse(l) as { seq: number; type: string; data: unknown })).toEqual([
        expect.objectContaining({ seq: 2, type: events[0]!.type, data: events[0]!.data }),
        expect.objectContaining({ seq: 3, type: events[1]!.type, data: events[1]!.data }),
      ]);
      expect(k("log", "tail", "--from", "end").stdout).toBe("");
      expect(k("log", "tail", "--from", new Date(Date.now() + 60_000).toISOString()).stdout).toBe("");
      expect(k("log", "tail", "--from", "2990").stdout.trim().split("\n")).toHaveLength(12);

      // Named query with a bound parameter, CSV output.
      const top = k("query", "orders_by_user", "top_users", "--param", "n=2", "--format", "csv");
      expect(top.stdout.trim().split("\n")).toHaveLength(3);

      // status --json and a refused write.
      const st = JSON.parse(k("--json", "status").stdout) as { nats: string; processors: { name: string; live: number }[] };
      expect(st.nats).toBe("ok");
      expect(st.processors[0]).toMatchObject({ name: "orders_by_user", live: 1 });
      const del = k("query", "orders_by_user", "DELETE FROM totals");
      expect(del.code).not.toBe(0);
      expect(del.stderr).toMatch(/only SELECT/);

      // Errors: one line, a hint, non-zero; --json errors are JSON on stdout.
      const unknown = k("--json", "query", "nope", "SELECT 1");
      expect(unknown.code).not.toBe(0);
      expect(JSON.parse(unknown.stdout)).toMatchObject({ error: "NOT_FOUND" });
      const badOffset = k("replay", "orders_by_user", "--from", "yesterday");
      expect(badOffset.code).not.toBe(0);
      expect(badOffset.stderr).toMatch(/offset "yesterday" is not understood\n {2}hint: an offset is a sequence number/);

      // Ctrl-C stops the worker and the embedded server.
      expect(await dev.stop("SIGINT")).toBe(0);
      await waitFor(() => !pidAlive(dev.natsPid), 10_000, "nats-server gone");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // About fifteen runs of the binary: each is ~1 s of CPU (mostly loading the TypeScript through tsx, the
    // query process adds under 0.1 s), so on a loaded 2-core machine the whole takes well over a minute.
  }, 180_000);

  it("refuses ids NATS would make collide and events too large once their headers count, naming the line, before anything is published", async () => {
    await using env = await TestEnv.start();
    const dir = mkdtempSync(join(tmpdir(), "kappa-e2e-"));
    const k = (...args: string[]) => kappa(["--nats", env.server.url, "--data-dir", join(dir, ".kappa"), ...args]);
    const file = (name: string, lines: unknown[]) => {
      const path = join(dir, name);
      writeFileSync(path, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
      return path;
    };
    try {
      // NATS trims header values: " o-1" would be stored as "o-1" and collide with it.
      const id = k("append", "order.placed", '{"order":"o-1"}', "--id", " o-1");
      expect(id.code).toBe(2);
      expect(id.stderr).toMatch(/^kappa: --id " o-1" starts or ends with whitespace\n {2}hint: NATS trims header values, so it would be stored as "o-1"/);
      const envelopes = k("append", "--file", file("ws.ndjson", [{ type: "a", id: "x-1", data: {} }, { type: "a", id: "x-1 ", data: {} }]));
      expect(envelopes.code).toBe(2);
      expect(envelopes.stderr).toMatch(/^kappa: line 2: the id "x-1 " starts or ends with whitespace/);
      // Objects and arrays would all become "[object Object]" and the like.
      const field = k("append", "order.placed", "--id-field", "order.id", "--file", file("field.ndjson", [{ order: { id: "o-1" } }, { order: { id: { n: 2 } } }]));
      expect(field.code).toBe(2);
      expect(field.stderr).toMatch(/^kappa: line 2: field order.id \(for --id-field\) is an object, not a string or a number\n {2}hint: ids must be strings or finite numbers/);
      // Fits max_payload alone; with Nats-Msg-Id and the batch headers it does not.
      const max = env.nc.info!.max_payload;
      const big = k("append", "blob.put", "--file", file("big.ndjson", [{ n: 1 }, { blob: "x".repeat(max - 50) }]));
      expect(big.code).toBe(2);
      expect(big.stderr).toMatch(new RegExp(`^kappa: line 2: event is \\d+ bytes \\(${max - 39} of data, up to \\d+ of headers\\), above the server's limit of ${max}\\n {2}hint: .*nothing was published`));
      expect((await env.jsm.streams.info(env.spec.stream)).state.messages).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("says clearly when NATS is not there", () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-e2e-"));
    try {
      const r = kappa(["--data-dir", dir, "--nats", "nats://127.0.0.1:1", "log", "info"]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/cannot reach NATS at nats:\/\/127.0.0.1:1/);
      expect(r.stderr).toMatch(/hint: start one with `kappa dev`/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gives one clear line and a hint for a wrong stream, a bad name, an unwritable data dir and a missing nats-server", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-e2e-"));
    const dataDir = join(dir, ".kappa");
    try {
      await using dev = await DevProcess.start(dataDir);
      const wrongStream = kappa(["--data-dir", dataDir, "--stream", "NOPE", "log", "info"]);
      expect(wrongStream.code).not.toBe(0);
      expect(wrongStream.stderr).toBe("kappa: stream NOPE not found\n  hint: append an event first (`kappa append`), run `kappa dev`, or pass --stream with the right name\n");
      const escape = kappa(["--data-dir", dataDir, "query", "../../etc", "SELECT 1"]);
      expect(escape.code).toBe(2);
      expect(escape.stderr).toMatch(/"..\/..\/etc" is not a valid processor name\n {2}hint: use 1–64 lowercase letters/);
      const badFlag = kappa(["--data-dir", dataDir, "query", "x", "SELECT 1", "--limit", "lots"]);
      expect(badFlag.code).not.toBe(0);
      expect(badFlag.stderr).toMatch(/--limit lots is not a positive integer/);
      writeFileSync(join(dir, "afile"), "");
      const unwritable = kappa(["--nats", dev.nats, "--data-dir", join(dir, "afile", "sub"), "run"]);
      expect(unwritable.code).not.toBe(0);
      expect(unwritable.stderr).toMatch(/^kappa: cannot write .*afile\/sub: a part of the path is not a directory\n {2}hint: pass a writable --data-dir/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const noServer = kappa(["--data-dir", join(dir, "x"), "dev"], { env: { KAPPA_NATS_SERVER: "/nonexistent/nats-server" } });
    expect(noServer.code).not.toBe(0);
    expect(noServer.stderr).toMatch(/KAPPA_NATS_SERVER points at \/nonexistent\/nats-server, which does not exist\n {2}hint: `bash scripts\/setup.sh` fetches nats-server/);
    // A server below the minimum is refused with the version found, the minimum and how to get a newer one.
    const old = join(dir, "old-nats-server");
    writeFileSync(old, "#!/bin/sh\necho 'nats-server: v2.9.10'\n", { mode: 0o755 });
    const tooOld = kappa(["--data-dir", join(dir, "x"), "dev"], { env: { KAPPA_NATS_SERVER: old } });
    expect(tooOld.code).not.toBe(0);
    expect(tooOld.stderr).toMatch(/is nats-server 2\.9\.10; Kappa needs 2\.\d+\.\d+ or newer\n {2}hint: `bash scripts\/setup.sh` fetches nats-server/);
    rmSync(dir, { recursive: true, force: true });
  });
});
