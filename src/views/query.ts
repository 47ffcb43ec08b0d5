import { existsSync } from "node:fs";
import { InputError, KappaError, NotFoundError } from "../errors.js";
import type { ProcessorRecord } from "./catalogTypes.js";
import { DataDir, validateProcessorName } from "./paths.js";
import { assertReadOnlySql } from "./readOnly.js";
import { takeLease } from "./leases.js";
import type { QueryPool, QueryResult } from "./queryPool.js";
import { waitForSeq } from "./seqWait.js";

const SQL_KEYWORD = /^(select|with|values|explain|vacuum|begin|commit|end|rollback|pragma|analyze|reindex|savepoint|release|detach|attach)$/i;

/** A query against one processor's view. */
export interface QueryRequest {
  processor: string;
  /** SQL text, or the name of one of the processor's named queries. */
  sql: string;
  params?: Record<string, unknown>;
  /** A version other than the live one. */
  version?: number;
  /** Wait until the version has applied this sequence (read-your-writes). */
  minSeq?: number;
  /** The whole time allowed (default 5 s), counted from `arrivedAt`: the --min-seq wait and the queue included. */
  timeoutMs?: number;
  /** When the request arrived (ms since the epoch; default now). */
  arrivedAt?: number;
  /** The first this many rows, the rest cut with `truncated: true` (default: no cut). */
  limit?: number;
  /** More rows than this (with no smaller `limit`) are refused with RESULT_TOO_LARGE (default 100,000). */
  maxRows?: number;
  /** Answers larger than this many bytes (roughly, as JSON) are refused with RESULT_TOO_LARGE (default 16 MiB). */
  maxBytes?: number;
}

/** Default cap on the bytes of one answer. */
export const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
/** Default cap on the rows of one answer: more is an error, not a silent cut. */
export const DEFAULT_MAX_ROWS = 100_000;

/** The answer: which version and sequence it reflects, and the rows. */
export interface QueryAnswer extends QueryResult {
  processor: string;
  version: number;
  /** Set when `sql` named one of the processor's queries. */
  named?: string;
}

/** Where query resolution gets processor records: the catalog when reachable, else the local copy. */
export type RecordSource = (processor: string) => Promise<ProcessorRecord | null>;

/** The version a query should read: the one asked for, or the live one; explains clearly when there is none yet. */
export function targetVersion(rec: ProcessorRecord, version?: number): number {
  if (version !== undefined) {
    const v = rec.versions[String(version)];
    if (!v) throw new NotFoundError(`${rec.name} has no version ${version}`, { hint: `see \`kappa status ${rec.name}\`` });
    if (v.state === "retired") throw new InputError(`${rec.name} v${version} is retired`, { hint: `query the live version (v${rec.live ?? "?"})` });
    return version;
  }
  if (rec.live === null) {
    const building = Object.values(rec.versions).filter((v) => v.state === "building").map((v) => `v${v.version}`);
    throw new KappaError("NO_LIVE_VERSION", `${rec.name} has no live version yet${building.length ? ` (${building.join(", ")} building)` : ""}`, {
      hint: `watch its progress with \`kappa status ${rec.name}\`, or query a version with --version`,
    });
  }
  return rec.live;
}

/** Runs a read-only query against the live (or a given) version, in a query process killed at the deadline, holding a reader lease. */
export async function queryView(dataDir: DataDir, records: RecordSource, pool: QueryPool, req: QueryRequest): Promise<QueryAnswer> {
  validateProcessorName(req.processor);
  const timeoutMs = req.timeoutMs ?? 5000;
  const deadline = (req.arrivedAt ?? Date.now()) + timeoutMs;
  const rec = await records(req.processor);
  if (!rec) throw new NotFoundError(`processor ${req.processor} is not deployed`, { hint: "deploy it with `kappa deploy <module>`; `kappa status` lists what exists" });
  let named: string | undefined;
  let sql = req.sql;
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(sql.trim())) {
    const live = rec.versions[String(req.version ?? rec.live ?? "")] ?? Object.values(rec.versions).at(-1);
    const code = live?.queries;
    named = sql.trim();
    const text = code?.[named];
    if (text === undefined && SQL_KEYWORD.test(named)) {
      named = undefined; // a bare keyword such as VACUUM: let the read-only check answer it
    } else if (text === undefined) {
      throw new NotFoundError(`${req.processor} has no named query ${named}`, { hint: code && Object.keys(code).length ? `named queries: ${Object.keys(code).join(", ")}` : "give SQL text, or declare `queries` in the processor" });
    }
    if (text !== undefined) sql = text;
  }
  assertReadOnlySql(sql);
  for (let attempt = 0; ; attempt++) {
    const current = attempt === 0 ? rec : (await records(req.processor)) ?? rec;
    const version = targetVersion(current, req.version);
    const path = dataDir.viewFile(req.processor, version);
    // The lease before the first look at the file: from here until release the worker cannot delete it.
    const release = takeLease(dataDir.viewsOf(req.processor), version);
    try {
      if (req.minSeq !== undefined) await waitForSeq(path, req.minSeq, deadline);
      if (!existsSync(path)) {
        // The version was retired between resolving and opening: resolve again (at most twice).
        if (attempt < 2 && req.version === undefined) continue;
        throw new KappaError("VIEW_MISSING", `view file of ${req.processor} v${version} is not in ${dataDir.root}`, {
          hint: "is `kappa run` (or `kappa dev`) running with this --data-dir? It builds the file from the log",
        });
      }
      const caps = { ...(req.limit !== undefined ? { limit: req.limit } : {}), maxRows: req.maxRows ?? DEFAULT_MAX_ROWS, maxBytes: req.maxBytes ?? DEFAULT_MAX_BYTES };
      const result = await pool.run({ path, sql, params: req.params ?? {}, ...caps, deadline, timeoutMs });
      return { processor: req.processor, version, ...(named ? { named } : {}), ...result };
    } finally {
      release();
    }
  }
}
