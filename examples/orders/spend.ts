import { defineProcessor } from "kappa";

/** Items bought and orders refunded per user: a second view of the same orders, to join with orders_by_user. */
export default defineProcessor({
  name: "spend",
  subjects: ["order.*"],
  schema: ["CREATE TABLE spend (user_id TEXT PRIMARY KEY, items INTEGER NOT NULL, refunds INTEGER NOT NULL)"],
  on: {
    "order.placed": (e, ctx) => {
      ctx.db.prepare("INSERT INTO spend (user_id, items, refunds) VALUES (?, ?, 0) ON CONFLICT (user_id) DO UPDATE SET items = items + excluded.items").run(e.data.user, e.data.quantity);
    },
    "order.refunded": (e, ctx) => {
      ctx.db.prepare("UPDATE spend SET refunds = refunds + 1 WHERE user_id = ?").run(e.data.user);
    },
  },
});
