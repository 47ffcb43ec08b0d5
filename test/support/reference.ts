import Database from "better-sqlite3";
import { digestDb } from "../../src/views/index.js";
import type { OrderEvent } from "../../examples/orders/generate.js";

/** orders_by_user computed directly from events (v1: refunds ignored; v2: refunds subtract), as sorted rows. */
export function referenceTotals(events: OrderEvent[], refundsSubtract = false): { user_id: string; orders: number; amount: number }[] {
  const m = new Map<string, { orders: number; amount: number }>();
  for (const e of events) {
    const d = e.data as { user: string; amount: number };
    if (e.type === "order.placed") {
      const t = m.get(d.user) ?? { orders: 0, amount: 0 };
      t.orders++;
      t.amount = Math.round((t.amount + d.amount) * 100) / 100;
      m.set(d.user, t);
    } else if (e.type === "order.refunded" && refundsSubtract) {
      const t = m.get(d.user);
      if (t) {
        t.orders--;
        t.amount = Math.round((t.amount - d.amount) * 100) / 100;
      }
    }
  }
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([user_id, t]) => ({ user_id, ...t }));
}

/** The content digest of rows in a fresh in-memory table shaped like orders_by_user's `totals`. */
export function referenceDigest(rows: { user_id: string; orders: number; amount: number }[]): string {
  const db = new Database(":memory:");
  db.exec("CREATE TABLE kappa_checkpoint (id INTEGER PRIMARY KEY, seq INTEGER); INSERT INTO kappa_checkpoint VALUES (1, 0);");
  db.exec("CREATE TABLE totals (user_id TEXT PRIMARY KEY, orders INTEGER NOT NULL, amount REAL NOT NULL)");
  const ins = db.prepare("INSERT INTO totals VALUES (?, ?, ?)");
  for (const r of rows) ins.run(r.user_id, r.orders, r.amount);
  const d = digestDb(db).digest;
  db.close();
  return d;
}
