// A small tokenizer for SQLite's SQL, shared by the query path's text check (readOnly.ts) and the query
// process (queryProcess.mjs). Plain JavaScript so the query process can load it without a TypeScript loader.
//
// It follows SQLite's own tokenizer (tokenize.c) wherever the boundary of a comment, a string or a quoted
// name is decided, in one pass from the left: a check that strips `--` comments first and `/* */` ones
// second (or strings apart from comments) can be fooled by `/* -- */`, `'--'` and the like into hiding
// a statement that SQLite then runs. Whitespace is only what SQLite counts as such (ASCII), and every
// byte above 0x7f is part of a name, as in SQLite.

/** @typedef {{ kind: "word" | "name" | "string" | "number" | "variable" | "op", text: string, at: number }} SqlToken */

const SPACE = /[ \t\n\f\r\v]/;
const ID_START = /[A-Za-z_\u0080-\uffff]/;
const ID_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;
const DIGIT = /[0-9]/;

/** The index just past a quoted run that starts at `i` and ends at `close`, a doubled `close` standing for itself; the end of the text when it never closes. */
function quoted(sql, i, close, doubling) {
  let j = i + 1;
  for (;;) {
    const k = sql.indexOf(close, j);
    if (k < 0) return sql.length;
    if (doubling && sql[k + 1] === close) {
      j = k + 2;
      continue;
    }
    return k + 1;
  }
}

/** The index just past a parameter (`:name`, `@name`, `$name`, `#name`, with Tcl's `::` and `(…)`), as tokenize.c reads it. */
function variable(sql, i) {
  let j = i + 1;
  let n = 0;
  while (j < sql.length) {
    const c = sql[j];
    if (ID_CHAR.test(c)) {
      n++;
      j++;
    } else if (c === "(" && n > 0) {
      j++;
      while (j < sql.length && sql[j] !== ")" && !SPACE.test(sql[j])) j++;
      if (sql[j] === ")") j++;
      return j;
    } else if (c === ":" && sql[j + 1] === ":") {
      j += 2;
    } else break;
  }
  return j;
}

/**
 * The tokens of `sql`, comments and whitespace dropped. Strings (`'…'`), quoted names (`"…"`, `` `…` ``,
 * `[…]`) and parameters come whole, so no keyword inside them is ever seen as one.
 * @param {string} sql
 * @returns {SqlToken[]}
 */
export function sqlTokens(sql) {
  const out = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    const start = i;
    if (SPACE.test(c)) {
      i++;
      continue;
    }
    if (c === "-" && sql[i + 1] === "-") {
      const nl = sql.indexOf("\n", i + 2);
      i = nl < 0 ? sql.length : nl + 1;
      continue;
    }
    if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? sql.length : end + 2;
      continue;
    }
    let kind;
    if (c === "'") {
      kind = "string";
      i = quoted(sql, i, "'", true);
    } else if (c === '"' || c === "`") {
      kind = "name";
      i = quoted(sql, i, c, true);
    } else if (c === "[") {
      kind = "name";
      i = quoted(sql, i, "]", false);
    } else if (c === ":" || c === "@" || c === "$" || c === "#") {
      kind = "variable";
      i = variable(sql, i);
    } else if (c === "?") {
      kind = "variable";
      i++;
      while (i < sql.length && DIGIT.test(sql[i])) i++;
    } else if (DIGIT.test(c) || (c === "." && DIGIT.test(sql[i + 1] ?? ""))) {
      kind = "number";
      i++;
      while (i < sql.length && (ID_CHAR.test(sql[i]) || sql[i] === "." || ((sql[i] === "+" || sql[i] === "-") && /[eE]/.test(sql[i - 1]) && DIGIT.test(sql[i + 1] ?? "")))) i++;
    } else if (ID_START.test(c)) {
      kind = "word";
      i++;
      while (i < sql.length && ID_CHAR.test(sql[i])) i++;
    } else {
      kind = "op";
      i++;
    }
    out.push({ kind, text: sql.slice(start, i), at: start });
  }
  return out;
}

const READS = new Set(["select", "with", "values"]);

/**
 * What kind of statement `sql` is, as SQLite decides it from its first keywords: `select`, `with` or
 * `values`; `explain` when EXPLAIN (or EXPLAIN QUERY PLAN) comes before one of those; otherwise the
 * first word, lower case (`explain pragma` for an EXPLAIN before anything else, `explain ` for one alone), or "" when there is none.
 * @param {string} sql
 * @returns {string}
 */
export function statementKind(sql) {
  const t = sqlTokens(sql);
  const word = (k) => (t[k]?.kind === "word" ? t[k].text.toLowerCase() : "");
  const first = word(0);
  if (first !== "explain") return first;
  const next = word(1) === "query" && word(2) === "plan" ? 3 : 1;
  return READS.has(word(next)) ? "explain" : `explain ${word(next) || t[next]?.text || ""}`;
}
