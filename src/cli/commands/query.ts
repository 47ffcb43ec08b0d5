import type { Command } from "commander";
import { InputError } from "../../errors.js";
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS, QueryPool, queryView, parseVersion, parseViewList, type QueryAnswer } from "../../views/index.js";
import { runViewsQuery } from "./queryViews.js";
import { runRemoteQuery } from "./queryRemote.js";
import { positiveInt } from "../flags.js";
import { CliContext } from "../context.js";
import { recordSource } from "../records.js";
import { printJson, renderCsv, renderTable } from "../output.js";
import { frozenVersionAsOf, type AsOfVersion } from "../asOf.js";

interface QueryFlags {
  version?: string;
  param: string[];
  minSeq?: string;
  timeout: string;
  limit?: string;
  maxRows: string;
  maxBytes: string;
  queryMemory?: string;
  format?: string;
  asOf?: string;
  build: boolean;
  views?: string;
  remote?: boolean;
  maxStaleness?: string;
}

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

/** Renders an answer in one of the output formats. */
export function renderAnswer(a: Pick<QueryAnswer, "rows" | "columns">, format: string): string {
  switch (format) {
    case "json":
      return JSON.stringify(a.rows, null, 2);
    case "ndjson":
      return a.rows.map((r) => JSON.stringify(r)).join("\n");
    case "csv":
      return renderCsv(a.columns, a.rows);
    case "table":
      return renderTable(a.columns, a.rows.map((r) => a.columns.map((c) => r[c])));
    default:
      throw new InputError(`unknown format ${format}`, { hint: "use table, json, ndjson or csv" });
  }
}

export function registerQuery(program: Command): void {
  program
    .command("query")
    .description("read-only SQL (or a named query) against the live version of a view; with --views, SQL across several views")
    .argument("<processor>", "the view to query (with --views: the SQL)")
    .argument("[sql]", "a SELECT, or the name of one of the processor's queries")
    .option("--views <a,b>", "query several views at once, each by its name: SELECT … FROM a.totals JOIN b.spend USING (user_id) (name@N for a version)")
    .option("--version <n>", "query this version instead of the live one")
    .option("--param <name=value>", "bind a parameter (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--min-seq <seq>", "wait until the view has applied this sequence (read-your-writes)")
    .option("--timeout <seconds>", "stop the query (and the --min-seq wait) after this long", "5")
    .option("--limit <rows>", "return the first this many rows (the rest are cut, with a note)")
    .option("--max-rows <rows>", "refuse answers with more rows than this (RESULT_TOO_LARGE), unless --limit cuts them first", String(DEFAULT_MAX_ROWS))
    .option("--max-bytes <n>", "refuse answers larger than this many bytes (RESULT_TOO_LARGE)", String(DEFAULT_MAX_BYTES))
    .option("--query-memory <bytes>", "SQLite memory cap of the query process (default: 256 MiB or 4x --max-bytes)")
    .option("--format <format>", "table, json, ndjson or csv", undefined)
    .option("--as-of <offset>", "answer from a frozen version as of this sequence or ISO time (built from the log when none exists)")
    .option("--no-build", "with --as-of: refuse instead of building a frozen version")
    .option("--remote", "ask the workers over NATS (any replica holding the view answers; --json names it) instead of this data dir")
    .option("--max-staleness <events>", "with --remote: only a replica at most this many events behind the log answers")
    .action(async (processor: string, sqlArg: string | undefined, flags: QueryFlags, cmd: Command) => {
      const started = Date.now();
      const ctx = CliContext.of(cmd);
      if (flags.views !== undefined) {
        if (sqlArg !== undefined) throw new InputError("with --views, give only the SQL", { hint: 'kappa query --views a,b "SELECT … FROM a.totals JOIN b.spend USING (user_id)"' });
        if (flags.version || flags.asOf) throw new InputError("--version and --as-of do not apply to --views", { hint: "name a version in the list instead: --views a@2,b" });
        return runViewsQuery(ctx, parseViewList(flags.views), processor, flags, started);
      }
      if (sqlArg === undefined) throw new InputError("give the SQL after the processor", { hint: `kappa query ${processor} "SELECT * FROM totals LIMIT 10"` });
      const sql = sqlArg;
      if (flags.remote) {
        if (flags.asOf !== undefined) throw new InputError("--as-of does not apply to --remote", { hint: "query the frozen version with --remote --version N (see `kappa status`)" });
        return runRemoteQuery(ctx, processor, sql, parseParams(flags.param), flags, renderAnswer);
      }
      if (flags.maxStaleness !== undefined) throw new InputError("--max-staleness needs --remote", { hint: "a local query reads this data dir's copy; add --remote to ask the workers" });
      const maxBytes = positiveInt("--max-bytes", flags.maxBytes);
      const memoryBytes = flags.queryMemory === undefined ? Math.max(256 << 20, maxBytes * 4) : positiveInt("--query-memory", flags.queryMemory);
      // The query runs in a child process, killed at the timeout: the command exits then, whatever SQLite is doing.
      // Started at once, so node's start-up overlaps the catalog lookup.
      const pool = new QueryPool({ size: 1, memoryBytes, warm: true });
      try {
        const timeoutMs = Math.round(Number(flags.timeout) * 1000);
        if (!(timeoutMs > 0)) throw new InputError(`--timeout ${flags.timeout} is not a positive number of seconds`);
        const rows = rowCaps(flags);
        const minSeq = flags.minSeq === undefined ? undefined : Number(flags.minSeq);
        if (minSeq !== undefined && !(Number.isInteger(minSeq) && minSeq >= 0)) throw new InputError(`--min-seq ${flags.minSeq} is not a sequence number`);
        if (flags.asOf !== undefined && flags.version) throw new InputError("--as-of and --version cannot be combined", { hint: "--as-of picks the frozen version itself; `kappa status` shows every version" });
        const asOf: AsOfVersion | undefined = flags.asOf !== undefined ? await frozenVersionAsOf(ctx, processor, flags.asOf, { build: flags.build, quiet: ctx.json }) : undefined;
        const version = asOf ? asOf.version : flags.version ? parseVersion(flags.version) : undefined;
        let fallback: string | undefined;
        const a = await queryView(ctx.dataDir, recordSource(ctx, (why) => (fallback = why)), pool, {
          processor,
          sql,
          params: parseParams(flags.param),
          ...(version !== undefined ? { version } : {}),
          ...(minSeq !== undefined ? { minSeq } : asOf ? { minSeq: asOf.seq } : {}),
          timeoutMs,
          // Building a frozen version for --as-of is not the query: its time does not count.
          arrivedAt: asOf?.built ? Date.now() : started,
          ...rows,
          maxBytes,
        });
        if (ctx.json && !flags.format) {
          printJson({ processor: a.processor, version: a.version, seq: a.seq, ...(asOf ? { asOf: flags.asOf, frozenAt: asOf.seq, built: asOf.built } : {}), rows: a.rows, ...(a.truncated ? { truncated: true } : {}) });
        } else {
          console.log(renderAnswer(a, flags.format ?? "table"));
        }
        const frozen = asOf ? ` (frozen, as of ${flags.asOf}${asOf.built ? "; built now" : ""})` : "";
        if (!ctx.json && (flags.format ?? "table") === "table") {
          process.stderr.write(`${a.rows.length} row${a.rows.length === 1 ? "" : "s"} from ${processor} v${a.version}${frozen} at seq ${a.seq}${a.truncated ? ` (cut at --limit ${rows.limit}; raise it to see more)` : ""}${fallback ? " (NATS unreachable: used the local catalog copy)" : ""}\n`);
        } else if (a.truncated) process.stderr.write(`note: rows cut at --limit ${rows.limit} (raise --limit to see more)\n`);
        else if (asOf && !ctx.json) process.stderr.write(`answered by ${processor} v${a.version}${frozen} at seq ${a.seq}\n`);
      } finally {
        await pool.close();
        await ctx.close();
      }
    });
}
