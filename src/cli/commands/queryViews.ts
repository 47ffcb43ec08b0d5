import { queryViews, type ViewRef } from "../../views/index.js";
import type { CliContext } from "../context.js";
import { printAnswer } from "../output.js";
import { withLocalQuery, type LocalQueryFlags } from "../queryFlags.js";
import { recordSource } from "../records.js";

/** `kappa query --views a,b "<sql>"`: one statement over several views, each version and sequence reported. */
export async function runViewsQuery(ctx: CliContext, views: ViewRef[], sql: string, flags: LocalQueryFlags, started: number): Promise<void> {
  await withLocalQuery(ctx, flags, async (pool, limits) => {
    let fallback: string | undefined;
    const a = await queryViews(ctx.dataDir, recordSource(ctx, (why) => (fallback = why)), pool, { views, sql, ...limits, arrivedAt: started });
    const from = a.views.map((v) => `${v.processor} v${v.version} at seq ${v.seq}`).join(", ");
    printAnswer(ctx.json, flags.format, a, { json: { views: a.views }, from, limit: limits.limit, fallback, csvRaw: flags.csvRaw === true });
  });
}
