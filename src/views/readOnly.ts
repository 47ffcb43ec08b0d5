import { InputError } from "../errors.js";
import { sqlTokens, statementKind } from "./sqlLexer.mjs";

const REFUSED = new Map([
  ["attach", "ATTACH is not allowed: queries read one view file"],
  ["detach", "DETACH is not allowed"],
  ["load_extension", "loading extensions is not allowed"],
  ["pragma", "PRAGMA is not allowed in queries (use the pragma_table_info(...) table functions to inspect tables)"],
  ["vacuum", "VACUUM is not allowed: the view file belongs to the worker"],
]);
const WRITES = new Set(["insert", "update", "delete", "replace", "create", "drop", "alter", "reindex", "analyze", "begin", "commit", "rollback", "savepoint", "release"]);
const WRITE_MESSAGE = "queries are read-only: writes, DDL and transactions are refused";
const READS = new Set(["select", "with", "values", "explain"]);
const HINT = "views are changed only by processors; queries are read-only";

/**
 * Refuses anything but a single read-only statement, with a message that says why. Keywords are read from
 * SQLite's own tokens (comments, strings and quoted names never count), after EXPLAIN only a SELECT, WITH
 * or VALUES may follow; the query process checks the statement's kind and `stmt.readonly` again.
 */
export function assertReadOnlySql(sql: string): void {
  const tokens = sqlTokens(sql);
  if (tokens.length === 0) throw new InputError("the query is empty", { hint: 'give a SELECT, e.g. kappa query orders_by_user "SELECT * FROM totals"', code: "QUERY_REFUSED" });
  const kind = statementKind(sql);
  if (kind.startsWith("explain ")) {
    // SQLite applies a pragma's setting while compiling it: EXPLAIN PRAGMA x = y changes the handle.
    throw new InputError(`EXPLAIN is allowed only before SELECT, WITH or VALUES; got EXPLAIN ${kind.slice(8).toUpperCase() || "alone"}`, { hint: HINT, code: "QUERY_REFUSED" });
  }
  if (!READS.has(kind)) {
    throw new InputError(`only SELECT, WITH, VALUES and EXPLAIN are allowed; got "${tokens[0]!.text}"`, { hint: "views are changed only by processors; deploy a new version to change them", code: "QUERY_REFUSED" });
  }
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== "word") continue;
    const w = t.text.toLowerCase();
    const why = REFUSED.get(w) ?? (WRITES.has(w) && !isCall(tokens, i) ? WRITE_MESSAGE : undefined);
    if (why) throw new InputError(why, { hint: HINT, code: "QUERY_REFUSED" });
  }
}

/** A word directly followed by `(` is a function call (`replace(name, 'a', 'b')`), not the keyword. */
function isCall(tokens: { text: string }[], i: number): boolean {
  return tokens[i + 1]?.text === "(";
}
