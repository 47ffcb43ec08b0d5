import { InputError } from "../errors.js";

const ALLOWED_START = /^(select|with|values|explain)\b/i;
const FORBIDDEN: [RegExp, string][] = [
  [/\battach\b/i, "ATTACH is not allowed: queries read one view file"],
  [/\bdetach\b/i, "DETACH is not allowed"],
  [/\bload_extension\b/i, "loading extensions is not allowed"],
  [/\bpragma\b/i, "PRAGMA is not allowed in queries (use the pragma_table_info(...) table functions to inspect tables)"],
  [/\bvacuum\b/i, "VACUUM is not allowed: the view file belongs to the worker"],
  [/\b(insert|update|delete|replace|create|drop|alter|reindex|analyze|begin|commit|rollback|savepoint|release)\b\s/i, "queries are read-only: writes, DDL and transactions are refused"],
];

/** Strips comments and string literals, so keyword checks see only SQL. */
function sqlSkeleton(sql: string): string {
  return sql
    .replace(/--[^\n]*/g, " ")
    .replace(/\/\*[\s\S]*?\*\//g, " ")
    .replace(/'(?:[^']|'')*'/g, "''");
}

/** Refuses anything but a single read-only statement, with a message that says why; the query thread checks `stmt.readonly` too. */
export function assertReadOnlySql(sql: string): void {
  const s = sqlSkeleton(sql).trim();
  if (!s) throw new InputError("the query is empty", { hint: 'give a SELECT, e.g. kappa query orders_by_user "SELECT * FROM totals"', code: "QUERY_REFUSED" });
  if (!ALLOWED_START.test(s)) {
    throw new InputError(`only SELECT, WITH, VALUES and EXPLAIN are allowed; got "${s.split(/\s+/)[0]}"`, { hint: "views are changed only by processors; deploy a new version to change them", code: "QUERY_REFUSED" });
  }
  for (const [re, why] of FORBIDDEN) {
    if (re.test(s + " ")) throw new InputError(why, { hint: "views are changed only by processors; queries are read-only", code: "QUERY_REFUSED" });
  }
}
