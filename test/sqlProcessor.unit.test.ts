import { describe, it, expect } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseSqlProcessor, checkSqlProcessor, BatchApplier, eventParams, splitStatements } from "../src/processors/index.js";
import { ViewWriter } from "../src/views/index.js";
import type { RawEvent } from "../src/log/index.js";

const PROC = `-- kappa: name = balances
-- kappa: subjects = account.*
-- kappa: on_error = halt

-- schema
CREATE TABLE balances (account TEXT PRIMARY KEY, owner TEXT, balance INTEGER NOT NULL CHECK (balance >= 0));

-- on account.opened
INSERT INTO balances (account, owner, balance) VALUES (:account, :owner__name, 0);

-- on account.deposited
UPDATE balances SET balance = balance + :amount WHERE account = :account;

-- on account.withdrawn
UPDATE balances SET balance = balance - :amount WHERE account = :account;

-- query rich
SELECT account, balance FROM balances WHERE balance >= :min ORDER BY account;
`;

const enc = new TextEncoder();
const ev = (seq: number, type: string, data: unknown): RawEvent => ({ seq, type, time: "2026-01-01T00:00:00.000Z", id: `e${seq}`, data: enc.encode(JSON.stringify(data)) });

function withView<T>(text: string, fn: (w: ViewWriter, a: BatchApplier) => T, policy?: "skip"): T {
  const dir = mkdtempSync(join(tmpdir(), "kappa-sql-"));
  const def = parseSqlProcessor(policy ? text.replace("on_error = halt", "on_error = skip") : text, "balances.sql");
  const w = ViewWriter.open(join(dir, "v1.sqlite"), { processor: def.name, version: 1, codeHash: "x" }, def.schema);
  try {
    return fn(w, new BatchApplier(w, def, 1));
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("SQL processors", () => {
  it("parse into a processor with schema, handlers per type, named queries, and bind nested fields", () => {
    const def = parseSqlProcessor(PROC, "balances.sql");
    expect(def).toMatchObject({ name: "balances", subjects: ["account.*"], onError: "halt", queries: { rich: "SELECT account, balance FROM balances WHERE balance >= :min ORDER BY account" } });
    expect(Object.keys(def.on!)).toEqual(["account.opened", "account.deposited", "account.withdrawn"]);
    expect(eventParams({ seq: 3, type: "t", time: "T", id: "i", data: { a: { b: 1, c: [1] }, ok: true } })).toEqual({ seq: 3, time: "T", type: "t", id: "i", data: '{"a":{"b":1,"c":[1]},"ok":true}', a: '{"b":1,"c":[1]}', a__b: 1, a__c: "[1]", ok: 1 });
    expect(splitStatements("INSERT INTO t VALUES ('a;b'); -- c;d\nUPDATE t SET x = 1;")).toEqual(["INSERT INTO t VALUES ('a;b')", "UPDATE t SET x = 1"]);
  });

  it("apply events inside the batch transaction", () => {
    withView(PROC, (w, a) => {
      expect(a.apply([ev(1, "account.opened", { account: "A", owner: { name: "ann" } }), ev(2, "account.deposited", { account: "A", amount: 50 }), ev(3, "account.withdrawn", { account: "A", amount: 20 })])).toBeNull();
      expect(w.db.prepare("SELECT * FROM balances").all()).toEqual([{ account: "A", owner: "ann", balance: 30 }]);
      expect(w.checkpoint).toBe(3);
    });
  });

  it("report a constraint violation and a missing parameter with the file, the statement and the event", () => {
    withView(PROC, (w, a) => {
      const p = a.apply([ev(1, "account.opened", { account: "A", owner: { name: "ann" } }), ev(2, "account.withdrawn", { account: "A", amount: 5 })]);
      expect(p?.message).toMatch(/^balances threw: balances.sql:15 \(on account.withdrawn\): `UPDATE balances SET balance = balance - :amount WHERE account = :account`: CHECK constraint failed/);
      expect(w.checkpoint).toBe(1);
    });
    withView(PROC, (_w, a) => {
      const p = a.apply([ev(1, "account.deposited", { account: "A" })]);
      expect(p?.message).toMatch(/balances.sql:12 \(on account.deposited\).*: missing parameter :amount/);
    });
  });

  it("skip failing events into the dead-letter table under onError skip", () => {
    withView(PROC, (w, a) => {
      expect(a.apply([ev(1, "account.opened", { account: "A", owner: { name: "ann" } }), ev(2, "account.withdrawn", { account: "A", amount: 5 }), ev(3, "account.deposited", { account: "A", amount: 9 })])).toBeNull();
      expect(w.db.prepare("SELECT balance FROM balances").pluck().get()).toBe(9);
      expect(w.db.prepare("SELECT seq, error FROM kappa_dead_letters").all()).toEqual([{ seq: 2, error: expect.stringMatching(/CHECK constraint failed/) }]);
    }, "skip");
  });

  it("fail the deploy on a syntax error, naming the file, line and statement", () => {
    expect(() => checkSqlProcessor(PROC.replace("UPDATE balances SET balance = balance + :amount", "UPDAT balances SET"), "balances.sql")).toThrow(/balances.sql:12 \(on account.deposited\): `UPDAT balances SET .*syntax error/);
    // The line of the statement that fails, not of its section's header: here the second of two.
    const two = PROC.replace("UPDATE balances SET balance = balance + :amount WHERE account = :account;", "UPDATE balances SET balance = balance + :amount WHERE account = :account;\n\n-- then\nUPDAT nope;");
    expect(() => checkSqlProcessor(two, "balances.sql")).toThrow(/balances.sql:15 \(on account.deposited\): `UPDAT nope`/);
    expect(() => checkSqlProcessor(PROC.replace("-- query rich\nSELECT account, balance FROM balances", "-- query rich\nSELECT nope FROM balances"), "balances.sql")).toThrow(/query rich.*no such column: nope/);
    expect(() => checkSqlProcessor(PROC, "balances.sql")).not.toThrow();
  });
});
