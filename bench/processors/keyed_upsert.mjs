// The bench's heavier workload: one upsert per event (every order event) into a table of about 10,000
// keys (order number mod 10,000), so a deploy's figure does not rest on the lightest handler.
export default {
  name: "keyed_upsert",
  subjects: ["order.*"],
  schema: ["CREATE TABLE per_key (k TEXT PRIMARY KEY, events INTEGER NOT NULL, amount REAL NOT NULL, last_type TEXT NOT NULL)"],
  apply: (e, ctx) => {
    const o = e.data.order;
    const k = "k" + (Number(o.slice(o.indexOf("-") + 1)) % 10000);
    ctx.db
      .prepare("INSERT INTO per_key (k, events, amount, last_type) VALUES (?, 1, ?, ?) ON CONFLICT (k) DO UPDATE SET events = events + 1, amount = amount + excluded.amount, last_type = excluded.last_type")
      .run(k, e.data.amount ?? 0, e.type);
  },
  queries: {
    top_keys: "SELECT k, events, amount FROM per_key ORDER BY events DESC, k LIMIT :n",
  },
};
