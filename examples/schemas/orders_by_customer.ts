import { defineProcessor } from "kappa";
import { placedV1ToV2, placedV2ToV3 } from "./shapes.js";

/**
 * Orders and spend per customer, written against the newest shape of order.placed only (v3: customer.id,
 * amount_cents). Older events reach the handler through the upcasters, which are part of this module's
 * code and so of its hash.
 */
export default defineProcessor({
  name: "orders_by_customer",
  subjects: ["order.placed", "order.refunded"],
  schema: ["CREATE TABLE customers (customer_id TEXT PRIMARY KEY, orders INTEGER NOT NULL, cents INTEGER NOT NULL)"],
  upcasters: {
    "order.placed": [placedV1ToV2, placedV2ToV3],
  },
  on: {
    "order.placed": (e, ctx) => {
      ctx.db
        .prepare("INSERT INTO customers VALUES (?, 1, ?) ON CONFLICT (customer_id) DO UPDATE SET orders = orders + 1, cents = cents + excluded.cents")
        .run(e.data.customer.id, e.data.amount_cents);
    },
    "order.refunded": (e, ctx) => {
      ctx.db.prepare("UPDATE customers SET orders = orders - 1, cents = cents - ? WHERE customer_id = ?").run(Math.round(e.data.amount * 100), e.data.user);
    },
  },
  queries: { top_customers: "SELECT customer_id, orders, cents FROM customers ORDER BY cents DESC, customer_id LIMIT :n" },
});
