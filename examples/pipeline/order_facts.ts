import { defineProcessor } from "kappa";

/** Stage 1 of the pipeline: turns order events into signed money movements, kept and emitted. */
export default defineProcessor({
  name: "order_facts",
  subjects: ["order.*"],
  schema: ["CREATE TABLE movements (seq INTEGER PRIMARY KEY, user_id TEXT NOT NULL, delta REAL NOT NULL)"],
  on: {
    "order.placed": (e, ctx) => {
      ctx.db.prepare("INSERT INTO movements (seq, user_id, delta) VALUES (?, ?, ?)").run(e.seq, e.data.user, e.data.amount);
      ctx.emit("money.moved", { user: e.data.user, delta: e.data.amount, order: e.data.order });
    },
    "order.refunded": (e, ctx) => {
      ctx.db.prepare("INSERT INTO movements (seq, user_id, delta) VALUES (?, ?, ?)").run(e.seq, e.data.user, -e.data.amount);
      ctx.emit("money.moved", { user: e.data.user, delta: -e.data.amount, order: e.data.order });
    },
  },
});
