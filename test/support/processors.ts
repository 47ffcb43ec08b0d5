import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

/** The temp dirs this test file's processors were written to; removed once its tests are done. */
const written: string[] = [];
// Registered when a test file first imports this module (its collection phase), so it runs after that
// file's last test; a module written at the top of a file is still there for every test that deploys it.
afterAll(() => {
  for (const dir of written.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Writes a processor module to a temp file (removed after the test file) and returns its path. */
export function writeProcessor(body: string, file = "processor.mjs"): string {
  const dir = mkdtempSync(join(tmpdir(), "kappa-proc-"));
  written.push(dir);
  const path = join(dir, file);
  writeFileSync(path, body);
  return path;
}

/** orders_by_user (v2 semantics) that throws on orders above `limit`, with the given error policy. */
export function throwingOrders(limit: number, onError: "halt" | "skip"): string {
  return writeProcessor(`
export default {
  name: "orders_by_user",
  subjects: ["order.*"],
  onError: ${JSON.stringify(onError)},
  schema: ["CREATE TABLE totals (user_id TEXT PRIMARY KEY, orders INTEGER NOT NULL, amount REAL NOT NULL)"],
  on: {
    "order.placed": (e, ctx) => {
      if (e.data.amount > ${limit}) throw new Error("amount too large: " + e.data.amount);
      ctx.db.prepare("INSERT INTO totals (user_id, orders, amount) VALUES (?, 1, ?) ON CONFLICT (user_id) DO UPDATE SET orders = orders + 1, amount = round(amount + excluded.amount, 2)").run(e.data.user, e.data.amount);
    },
    "order.refunded": (e, ctx) => {
      ctx.db.prepare("UPDATE totals SET orders = orders - 1, amount = round(amount - ?, 2) WHERE user_id = ?").run(e.data.amount, e.data.user);
    },
  },
};
`);
}
