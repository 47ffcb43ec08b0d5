import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { InputError, NotFoundError } from "../errors.js";
import { readLeased, type PickedView } from "./leasedRead.js";
import { parseVersion, validateProcessorName, type DataDir } from "./paths.js";
import { targetVersion, type RecordSource } from "./query.js";
import { answerCaps, queryDeadline, type QueryLimits } from "./queryLimits.js";
import type { QueryPool, QueryResult } from "./queryPool.js";
import { assertReadOnlySql } from "./readOnly.js";

/** One view a cross-view query reads: a processor, at its live version unless one is named (`name@3`). */
export interface ViewRef {
  processor: string;
  version?: number;
}

/** A query over several views, each under its processor's name: `SELECT … FROM a.totals JOIN b.spend USING (user_id)`. */
export interface ViewsQueryRequest extends QueryLimits {
  views: ViewRef[];
  sql: string;
}

/** Which version of each view answered, and the sequence each one's snapshot reflects. */
export interface ViewsAnswer extends QueryResult {
  views: { processor: string; version: number; seq: number }[];
}

/** SQLite keeps at most 10 attached files by default. */
export const MAX_VIEWS = 10;
const RESERVED = new Set(["main", "temp"]);

/** Parses `a,b@2,c` into view references. */
export function parseViewList(text: string): ViewRef[] {
  const refs = text.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
    const [name, v, ...rest] = s.split("@");
    // `a@2@3` is a typo, not version 2: refuse it rather than read a version nobody asked for.
    if (rest.length > 0) throw new InputError(`"${s}" names more than one version`, { hint: "name a view as `name` or `name@version`, e.g. --views orders_by_user@2,spend", code: "BAD_VIEW" });
    return { processor: validateProcessorName(name!), ...(v !== undefined ? { version: parseVersion(v) } : {}) };
  });
  if (refs.length === 0) throw new InputError("--views names no processor", { hint: "e.g. --views orders_by_user,spend" });
  return refs;
}

/** A file with no tables that stands as `main`, so every view is reached by its own name. */
function emptyMain(dataDir: DataDir): string {
  const path = join(dataDir.root, "views", ".empty.sqlite");
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, ""); // a zero-byte file is an empty database
  }
  return path;
}

/**
 * Runs one read-only statement over several views. The engine attaches each version's file read-only under
 * the processor's name (the SQL never attaches anything: ATTACH stays refused), reads every checkpoint in
 * the same read transaction as the rows — one snapshot per file — and answers each view's version and sequence.
 */
export async function queryViews(dataDir: DataDir, records: RecordSource, pool: QueryPool, req: ViewsQueryRequest): Promise<ViewsAnswer> {
  if (req.views.length > MAX_VIEWS) throw new InputError(`${req.views.length} views in one query; at most ${MAX_VIEWS}`, { hint: "join fewer views, or export them (`kappa export`) to an analytics tool" });
  const names = new Set<string>();
  for (const v of req.views) {
    if (RESERVED.has(v.processor)) throw new InputError(`a processor named ${v.processor} cannot be queried with --views: the name is SQLite's own schema`, { hint: "query it on its own with `kappa query`" });
    if (names.has(v.processor)) throw new InputError(`${v.processor} is named twice in --views`, { hint: "name each view once" });
    names.add(v.processor);
  }
  assertReadOnlySql(req.sql);
  const { timeoutMs, deadline } = queryDeadline(req);
  const plan = {
    pick: async () => {
      const picked: PickedView[] = [];
      for (const v of req.views) {
        const rec = await records(v.processor);
        if (!rec) throw new NotFoundError(`processor ${v.processor} is not deployed`, { hint: "`kappa status` lists what exists" });
        const version = targetVersion(rec, v.version);
        picked.push({ processor: v.processor, version, path: dataDir.viewFile(v.processor, version) });
      }
      return picked;
    },
    live: req.views.every((v) => v.version === undefined),
    ...(req.minSeq !== undefined ? { minSeq: req.minSeq } : {}),
    deadline,
  };
  return readLeased(dataDir, plan, async (picked) => {
    const result = await pool.run({
      path: emptyMain(dataDir),
      attach: Object.fromEntries(picked.map((p) => [p.processor, p.path])),
      seqSchemas: picked.map((p) => p.processor),
      sql: req.sql,
      params: req.params ?? {},
      ...answerCaps(req),
      deadline,
      timeoutMs,
    });
    return { ...result, views: picked.map((p) => ({ processor: p.processor, version: p.version, seq: result.seqs?.[p.processor] ?? 0 })) };
  });
}
