import { defineProcessor } from "kappa";

/** Stage 3: how many users are in each tier, from user_spend's tier changes. */
export default defineProcessor({
  name: "tier_counts",
  source: "user_spend",
  schema: ["CREATE TABLE tiers (tier TEXT PRIMARY KEY, users INTEGER NOT NULL)"],
  on: {
    "tier.changed": (e, ctx) => {
      if (e.data.from) ctx.db.prepare("UPDATE tiers SET users = users - 1 WHERE tier = ?").run(e.data.from);
      ctx.db.prepare("INSERT INTO tiers (tier, users) VALUES (?, 1) ON CONFLICT (tier) DO UPDATE SET users = users + 1").run(e.data.to);
    },
  },
  queries: { tiers: "SELECT tier, users FROM tiers ORDER BY tier" },
});
