import { InputError, KappaError, NotFoundError } from "../errors.js";
import type { ProcessorRecord } from "./catalogTypes.js";
import { DataDir, validateProcessorName } from "./paths.js";
import { assertReadOnlySql } from "./readOnly.js";
import { readLeased } from "./leasedRead.js";
import { answerCaps, queryDeadline, type QueryLimits } from "./queryLimits.js";
import type { QueryPool, QueryResult } from "./queryPool.js";

const SQL_KEYWORD = /^(select|with|values|explain|vacuum|begin|commit|end|rollback|pragma|analyze|reindex|savepoint|release|detach|attach)$/i;

/** A query against one processor's view. */
export interface QueryRequest extends QueryLimits {
  processor: string;
  /** SQL text, or the name of one of the processor's named queries. */
  sql: string;
  /** A version other than the live one. */
  version?: number;
}

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
  const { timeoutMs, deadline } = queryDeadline(req);
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
  const plan = {
    pick: async (attempt: number) => {
      const current = attempt === 0 ? rec : (await records(req.processor)) ?? rec;
      const version = targetVersion(current, req.version);
      return [{ processor: req.processor, version, path: dataDir.viewFile(req.processor, version) }];
    },
    live: req.version === undefined,
    ...(req.minSeq !== undefined ? { minSeq: req.minSeq } : {}),
    deadline,
  };
  return readLeased(dataDir, plan, async ([view]) => {
    const result = await pool.run({ path: view!.path, sql, params: req.params ?? {}, ...answerCaps(req), deadline, timeoutMs });
    return { processor: req.processor, version: view!.version, ...(named ? { named } : {}), ...result };
  });
}
