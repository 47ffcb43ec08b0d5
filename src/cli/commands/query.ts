import type { Command } from "commander";
import { InputError } from "../../errors.js";
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS, queryView, parseVersion, parseViewList } from "../../views/index.js";
import { runViewsQuery } from "./queryViews.js";
import { MAX_STALENESS_HELP, runRemoteQuery } from "./queryRemote.js";
import { CliContext } from "../context.js";
import { recordSource } from "../records.js";
import { printAnswer, renderAnswer } from "../output.js";
import { parseParams, withLocalQuery, type LocalQueryFlags } from "../queryFlags.js";
import { frozenVersionAsOf, type AsOfVersion } from "../asOf.js";

/** Every flag of `kappa query`: the local ones, and those of --as-of, --views and --remote. */
interface QueryFlags extends LocalQueryFlags {
  version?: string;
  asOf?: string;
  build: boolean;
  views?: string;
  remote?: boolean;
  maxStaleness?: string;
}

/** `kappa query`: one view (local or --remote), or several with --views. */
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
    .option("--csv-raw", "with --format csv: write text as it is, also text a spreadsheet would run as a formula (by default =, +, -, @ first get a leading ')")
    .option("--as-of <offset>", "answer from a frozen version as of this sequence or ISO time (built from the log when none exists)")
    .option("--no-build", "with --as-of: refuse instead of building a frozen version")
    .option("--remote", "ask the workers over NATS (any replica holding the view answers; --json names it) instead of this data dir")
    .option("--max-staleness <events|any>", MAX_STALENESS_HELP)
    .action(async (processor: string, sqlArg: string | undefined, flags: QueryFlags, cmd: Command) => {
      const started = Date.now();
      const ctx = CliContext.of(cmd);
      if (flags.csvRaw && flags.format !== "csv") throw new InputError("--csv-raw applies to --format csv", { hint: "add --format csv, or drop --csv-raw" });
      if (flags.views !== undefined) {
        if (sqlArg !== undefined) throw new InputError("with --views, give only the SQL", { hint: 'kappa query --views a,b "SELECT … FROM a.totals JOIN b.spend USING (user_id)"' });
        if (flags.version || flags.asOf) throw new InputError("--version and --as-of do not apply to --views", { hint: "name a version in the list instead: --views a@2,b" });
        return runViewsQuery(ctx, parseViewList(flags.views), processor, flags, started);
      }
      if (sqlArg === undefined) throw new InputError("give the SQL after the processor", { hint: `kappa query ${processor} "SELECT * FROM totals LIMIT 10"` });
      const sql = sqlArg;
      if (flags.remote) {
        if (flags.asOf !== undefined) throw new InputError("--as-of does not apply to --remote", { hint: "query the frozen version with --remote --version N (see `kappa status`)" });
        return runRemoteQuery(ctx, processor, sql, parseParams(flags.param), flags, (a, format) => renderAnswer(a, format, flags.csvRaw === true));
      }
      if (flags.maxStaleness !== undefined) throw new InputError("--max-staleness needs --remote", { hint: "a local query reads this data dir's copy; add --remote to ask the workers" });
      await withLocalQuery(ctx, flags, async (pool, limits) => {
        if (flags.asOf !== undefined && flags.version) throw new InputError("--as-of and --version cannot be combined", { hint: "--as-of picks the frozen version itself; `kappa status` shows every version" });
        const asOf: AsOfVersion | undefined = flags.asOf !== undefined ? await frozenVersionAsOf(ctx, processor, flags.asOf, { build: flags.build, quiet: ctx.json }) : undefined;
        const version = asOf ? asOf.version : flags.version ? parseVersion(flags.version) : undefined;
        let fallback: string | undefined;
        const a = await queryView(ctx.dataDir, recordSource(ctx, (why) => (fallback = why)), pool, {
          processor,
          sql,
          ...limits,
          ...(version !== undefined ? { version } : {}),
          ...(limits.minSeq === undefined && asOf ? { minSeq: asOf.seq } : {}),
          // Building a frozen version for --as-of is not the query: its time does not count.
          arrivedAt: asOf?.built ? Date.now() : started,
        });
        const frozen = asOf ? ` (frozen, as of ${flags.asOf}${asOf.built ? "; built now" : ""})` : "";
        const printed = printAnswer(ctx.json, flags.format, a, {
          json: { processor: a.processor, version: a.version, seq: a.seq, ...(asOf ? { asOf: flags.asOf, frozenAt: asOf.seq, built: asOf.built } : {}) },
          from: `${processor} v${a.version}${frozen} at seq ${a.seq}`,
          limit: limits.limit,
          fallback,
          csvRaw: flags.csvRaw === true,
        });
        if (!printed && asOf && !ctx.json) process.stderr.write(`answered by ${processor} v${a.version}${frozen} at seq ${a.seq}\n`);
      });
    });
}
