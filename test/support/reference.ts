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
  return referenceDigestOf(["CREATE TABLE totals (user_id TEXT PRIMARY KEY, orders INTEGER NOT NULL, amount REAL NOT NULL)"], { totals: rows.map((r) => [r.user_id, r.orders, r.amount]) });
}

/**
 * The content digest of a fresh in-memory database made by `schema` (the processor's own DDL, so column
 * types and affinities match) and filled with `rows`: per table, each row's values in column order.
 */
export function referenceDigestOf(schema: string[], rows: Record<string, unknown[][]>): string {
  const db = new Database(":memory:");
  db.exec("CREATE TABLE kappa_checkpoint (id INTEGER PRIMARY KEY, seq INTEGER); INSERT INTO kappa_checkpoint VALUES (1, 0);");
  for (const ddl of schema) db.exec(ddl);
  for (const [table, list] of Object.entries(rows)) {
    if (list.length === 0) continue;
    const ins = db.prepare(`INSERT INTO "${table}" VALUES (${list[0]!.map(() => "?").join(", ")})`);
    for (const r of list) ins.run(...r);
  }
  const d = digestDb(db).digest;
  db.close();
  return d;
}

/** order_facts' `movements` computed directly from events whose stream sequence is their index + 1 (the only events in the stream). */
export function referenceMovementsDigest(events: OrderEvent[]): string {
  const rows = events.flatMap((e, i) => {
    const d = e.data as { user: string; amount: number };
    if (e.type === "order.placed") return [[i + 1, d.user, d.amount]];
    if (e.type === "order.refunded") return [[i + 1, d.user, -d.amount]];
    return [];
  });
  return referenceDigestOf(["CREATE TABLE movements (seq INTEGER PRIMARY KEY, user_id TEXT NOT NULL, delta REAL NOT NULL)"], { movements: rows });
}
