import { defineProcessor } from "kappa";

/** Orders and amount per user: every placed order counts; refunds do not subtract (see orders_by_user_v2.ts). */
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
  },
  queries: {
    top_users: "SELECT user_id, orders, amount FROM totals ORDER BY amount DESC, user_id LIMIT :n",
  },
});
