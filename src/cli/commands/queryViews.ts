import { InputError } from "../../errors.js";
import { QueryPool, queryViews, type ViewRef } from "../../views/index.js";
import type { CliContext } from "../context.js";
import { positiveInt } from "../flags.js";
import { printJson } from "../output.js";
import { recordSource } from "../records.js";
import { parseParams, renderAnswer, rowCaps } from "./query.js";

/** The flags of `kappa query` that a cross-view query uses. */
export interface ViewsQueryFlags {
  param: string[];
  minSeq?: string;
  timeout: string;
  limit?: string;
  maxRows: string;
  maxBytes: string;
  queryMemory?: string;
  format?: string;
}

/** `kappa query --views a,b "<sql>"`: one statement over several views, each version and sequence reported. */
export async function runViewsQuery(ctx: CliContext, views: ViewRef[], sql: string, flags: ViewsQueryFlags, started: number): Promise<void> {
  const maxBytes = positiveInt("--max-bytes", flags.maxBytes);
  const memoryBytes = flags.queryMemory === undefined ? Math.max(256 << 20, maxBytes * 4) : positiveInt("--query-memory", flags.queryMemory);
  const pool = new QueryPool({ size: 1, memoryBytes, warm: true });
  try {
    const timeoutMs = Math.round(Number(flags.timeout) * 1000);
    if (!(timeoutMs > 0)) throw new InputError(`--timeout ${flags.timeout} is not a positive number of seconds`);
    const rows = rowCaps(flags);
    const minSeq = flags.minSeq === undefined ? undefined : Number(flags.minSeq);
    if (minSeq !== undefined && !(Number.isInteger(minSeq) && minSeq >= 0)) throw new InputError(`--min-seq ${flags.minSeq} is not a sequence number`);
    let fallback: string | undefined;
    const a = await queryViews(ctx.dataDir, recordSource(ctx, (why) => (fallback = why)), pool, {
      views,
      sql,
      params: parseParams(flags.param),
      ...(minSeq !== undefined ? { minSeq } : {}),
      timeoutMs,
      arrivedAt: started,
      ...rows,
      maxBytes,
    });
    if (ctx.json && !flags.format) printJson({ views: a.views, rows: a.rows, ...(a.truncated ? { truncated: true } : {}) });
    else console.log(renderAnswer(a, flags.format ?? "table"));
    if (!ctx.json && (flags.format ?? "table") === "table") {
      const from = a.views.map((v) => `${v.processor} v${v.version} at seq ${v.seq}`).join(", ");
      process.stderr.write(`${a.rows.length} row${a.rows.length === 1 ? "" : "s"} from ${from}${a.truncated ? ` (cut at --limit ${rows.limit}; raise it to see more)` : ""}${fallback ? " (NATS unreachable: used the local catalog copy)" : ""}\n`);
    } else if (a.truncated) process.stderr.write(`note: rows cut at --limit ${rows.limit} (raise --limit to see more)\n`);
  } finally {
    await pool.close();
    await ctx.close();
  }
}
