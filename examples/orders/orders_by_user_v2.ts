import { defineProcessor } from "kappa";

/** Version 2 of orders_by_user: refunds subtract the order and its amount. */
export default defineProcessor({
  name: "orders_by_user",
  subjects: ["order.*"],
  schema: [
    "CREATE TABLE totals (user_id TEXT PRIMARY KEY, orders INTEGER NOT NULL, amount REAL NOT NULL)",
  ],
  on: {
    "order.placed": (e, ctx) => {
      ctx.db
        .prepare("INSERT INTO totals (user_id, orders, amount) VALUES (?, 1, ?) ON CONFLICT (user_id) DO UPDATE SET orders = orders + 1, amount = round(amount + excluded.amount, 2)")
        .run(e.data.user, e.data.amount);
    },
    "order.refunded": (e, ctx) => {
      ctx.db
        .prepare("UPDATE totals SET orders = orders - 1, amount = round(amount - ?, 2) WHERE user_id = ?")
        .run(e.data.amount, e.data.user);
    },
  },
  queries: {
    top_users: "SELECT user_id, orders, amount FROM totals ORDER BY amount DESC, user_id LIMIT :n",
  },
});
