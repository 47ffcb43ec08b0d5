/** One token of SQLite SQL: a bare word (keyword or name), a quoted name, a string, a number, a parameter or an operator. */
export interface SqlToken {
  kind: "word" | "name" | "string" | "number" | "variable" | "op";
  text: string;
  /** Its offset in the text. */
  at: number;
}

/** The tokens of `sql` as SQLite's tokenizer splits it, comments and whitespace dropped. */
export function sqlTokens(sql: string): SqlToken[];

/** `select`, `with`, `values`, `explain` (before one of those), else the statement's first word(s), lower case. */
export function statementKind(sql: string): string;
