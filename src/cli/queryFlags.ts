import { InputError } from "../errors.js";
import { QueryPool } from "../views/index.js";
import type { CliContext } from "./context.js";
import { positiveInt } from "./flags.js";

/** Parses `--param name=value`; values that are JSON (numbers, true, null, "quoted") bind as such, others as text. */
export function parseParams(list: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of list) {
    const i = p.indexOf("=");
    if (i <= 0) throw new InputError(`--param ${p} is not name=value`, { hint: "e.g. --param n=10 --param user=u1" });
    const raw = p.slice(i + 1);
    let v: unknown = raw;
    try {
      v = JSON.parse(raw);
      if (typeof v === "object" && v !== null) v = raw;
    } catch {
      v = raw;
    }
    out[p.slice(0, i).replace(/^[:@$]/, "")] = v;
  }
  return out;
}

/** `--limit` (the first rows, the rest cut with a note) and `--max-rows` (more rows is an error), checked together. */
export function rowCaps(flags: { limit?: string; maxRows: string }): { limit?: number; maxRows: number } {
  const maxRows = positiveInt("--max-rows", flags.maxRows);
  if (flags.limit === undefined) return { maxRows };
  const limit = positiveInt("--limit", flags.limit);
  if (limit > maxRows) throw new InputError(`--limit ${limit} is above the row cap --max-rows ${maxRows}`, { hint: `raise the cap too: --limit ${limit} --max-rows ${limit}` });
  return { limit, maxRows };
}

/** `--timeout <seconds>` in milliseconds. */
export function timeoutMsOf(seconds: string): number {
  const timeoutMs = Math.round(Number(seconds) * 1000);
  if (!(timeoutMs > 0)) throw new InputError(`--timeout ${seconds} is not a positive number of seconds`);
  return timeoutMs;
}

/** The flags a query against this data dir's view files takes, one view or several. */
export interface LocalQueryFlags {
  param: string[];
  minSeq?: string;
  timeout: string;
  limit?: string;
  maxRows: string;
  maxBytes: string;
  queryMemory?: string;
  format?: string;
  /** `--csv-raw`: with `--format csv`, text as it is (no `'` before a would-be formula). */
  csvRaw?: boolean;
}

/** Those flags, checked: what `queryView` and `queryViews` take. */
export interface LocalQueryLimits {
  params: Record<string, unknown>;
  minSeq?: number;
  timeoutMs: number;
  limit?: number;
  maxRows: number;
  maxBytes: number;
}

/**
 * Runs a local query with its flags checked and a query process of its own, then closes the process and
 * the context. The query runs in that child process, killed at the timeout: the command exits then,
 * whatever SQLite is doing. It is started before the other flags are checked, so node's start-up overlaps
 * the catalog lookup.
 */
export async function withLocalQuery<T>(ctx: CliContext, flags: LocalQueryFlags, run: (pool: QueryPool, limits: LocalQueryLimits) => Promise<T>): Promise<T> {
  const maxBytes = positiveInt("--max-bytes", flags.maxBytes);
  const memoryBytes = flags.queryMemory === undefined ? Math.max(256 << 20, maxBytes * 4) : positiveInt("--query-memory", flags.queryMemory);
  const pool = new QueryPool({ size: 1, memoryBytes, warm: true });
  try {
    const timeoutMs = timeoutMsOf(flags.timeout);
    const rows = rowCaps(flags);
    const minSeq = flags.minSeq === undefined ? undefined : Number(flags.minSeq);
    if (minSeq !== undefined && !(Number.isInteger(minSeq) && minSeq >= 0)) throw new InputError(`--min-seq ${flags.minSeq} is not a sequence number`);
    const params = parseParams(flags.param);
    return await run(pool, { params, ...(minSeq !== undefined ? { minSeq } : {}), timeoutMs, ...rows, maxBytes });
  } finally {
    await pool.close();
    await ctx.close();
  }
}
