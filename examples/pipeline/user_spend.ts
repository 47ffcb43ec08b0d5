import { defineProcessor } from "kappa";

/** The tier a user's spend puts them in. */
export function tierOf(spend: number): string {
  return spend >= 1000 ? "gold" : spend >= 300 ? "silver" : "bronze";
}

/** Stage 2: reads order_facts' output, keeps spend per user, emits a tier change when a user moves tier. */
export default defineProcessor({
  name: "user_spend",
  source: "order_facts",
  schema: ["CREATE TABLE spend (user_id TEXT PRIMARY KEY, total REAL NOT NULL, tier TEXT NOT NULL)"],
  on: {
    "money.moved": (e, ctx) => {
      const row = ctx.db.prepare("SELECT total, tier FROM spend WHERE user_id = ?").get(e.data.user) as { total: number; tier: string } | undefined;
      const total = Math.round(((row?.total ?? 0) + e.data.delta) * 100) / 100;
      const tier = tierOf(total);
      ctx.db.prepare("INSERT INTO spend (user_id, total, tier) VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET total = excluded.total, tier = excluded.tier").run(e.data.user, total, tier);
      if (tier !== (row?.tier ?? "none")) ctx.emit("tier.changed", { user: e.data.user, from: row?.tier ?? null, to: tier });
    },
  },
});
