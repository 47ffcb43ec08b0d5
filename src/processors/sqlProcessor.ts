import Database, { type Statement } from "better-sqlite3";
import { InputError, KappaError, messageOf } from "../errors.js";
import { validateDefinition } from "./validate.js";
import type { KappaEvent, ProcessorContext, ProcessorDefinition, Handler } from "./define.js";

/**
 * A processor written in SQL. The file has `-- kappa: key = value` header lines (name, subjects,
 * on_error), then sections started by comment lines: `-- schema`, `-- on <event type>` (one or more
 * statements run for each event of that type), `-- query <name>`. Statements bind `:seq`, `:time`,
 * `:type`, `:id`, `:data` (the JSON text) and every field of the data; nested fields join with `__`
 * (`:customer__id`).
 */
export function parseSqlProcessor(text: string, origin: string): ProcessorDefinition {
  const { header, sections } = parseSections(text, origin);
  const schema: string[] = [];
  const on: Record<string, Handler> = {};
  const queries: Record<string, string> = {};
  for (const sec of sections) {
    const body = sec.body.join("\n").trim();
    if (sec.kind === "schema") {
      if (body) schema.push(body);
    } else if (sec.kind === "query") {
      if (!sec.arg) throw new InputError(`${origin}:${sec.line}: \`-- query\` needs a name`, { code: "BAD_PROCESSOR" });
      queries[sec.arg] = body.replace(/;\s*$/, "");
    } else {
      if (!sec.arg) throw new InputError(`${origin}:${sec.line}: \`-- on\` needs an event type`, { code: "BAD_PROCESSOR" });
      const stmts = statementsOf(sec);
      if (stmts.length === 0) throw new InputError(`${origin}:${sec.line}: no statement for ${sec.arg}`, { code: "BAD_PROCESSOR" });
      on[sec.arg] = sqlHandler(origin, sec.arg, stmts);
    }
  }
  const def: ProcessorDefinition = {
    name: header.name ?? "",
    schema,
    on,
    ...(header.subjects ? { subjects: header.subjects.split(",").map((s) => s.trim()).filter(Boolean) } : {}),
    ...(header.on_error ? { onError: header.on_error as "halt" | "skip" } : {}),
    ...(header.source ? { source: header.source } : {}),
    ...(Object.keys(queries).length ? { queries } : {}),
  };
  return validateDefinition(def, origin);
}

/**
 * Checks a SQL processor before it is deployed: runs its schema in a scratch database and prepares
 * every statement and query, so syntax errors and unknown tables fail the deploy, not the first event.
 */
export function checkSqlProcessor(text: string, origin: string): void {
  const def = parseSqlProcessor(text, origin);
  const { sections } = parseSections(text, origin);
  const db = new Database(":memory:");
  try {
    for (const sql of def.schema) {
      try {
        db.exec(sql);
      } catch (err) {
        throw new InputError(`${origin}: schema failed: ${messageOf(err)}`, { hint: "fix the schema section", code: "BAD_PROCESSOR" });
      }
    }
    for (const sec of sections.filter((x) => x.kind !== "schema")) {
      const stmts = sec.kind === "on" ? statementsOf(sec) : [{ sql: sec.body.join("\n").trim().replace(/;\s*$/, ""), line: sec.line + 1 + leadingBlankLines(sec.body) }];
      for (const { sql, line } of stmts) {
        try {
          db.prepare(sql);
        } catch (err) {
          throw new InputError(`${origin}:${line} (${sec.kind} ${sec.arg}): \`${sql.replace(/\s+/g, " ").slice(0, 120)}\`: ${messageOf(err)}`, { hint: "fix the statement and deploy again", code: "BAD_PROCESSOR" });
        }
      }
    }
  } finally {
    db.close();
  }
}

interface Section {
  kind: "schema" | "on" | "query";
  arg: string;
  body: string[];
  line: number;
}

function parseSections(text: string, origin: string): { header: Record<string, string>; sections: Section[] } {
  const header: Record<string, string> = {};
  const sections: Section[] = [];
  let current: Section | undefined;
  text.split(/\r?\n/).forEach((line, i) => {
    const h = /^--\s*kappa:\s*([a-z_]+)\s*=\s*(.*?)\s*$/i.exec(line);
    if (h) return void (header[h[1]!.toLowerCase()] = h[2]!);
    const s = /^--\s*(schema|on|query)\b\s*(\S*)\s*$/i.exec(line);
    if (s) {
      current = { kind: s[1]!.toLowerCase() as "schema" | "on" | "query", arg: s[2] ?? "", body: [], line: i + 1 };
      sections.push(current);
      return;
    }
    if (current) current.body.push(line);
    else if (line.trim() && !line.trim().startsWith("--")) {
      throw new InputError(`${origin}:${i + 1}: SQL before the first section`, { hint: "start sections with `-- schema`, `-- on <type>` or `-- query <name>`", code: "BAD_PROCESSOR" });
    }
  });
  return { header, sections };
}

/** One statement of an `-- on` section and the file line it starts on. */
interface LocatedStatement {
  sql: string;
  line: number;
}

function leadingBlankLines(body: string[]): number {
  let n = 0;
  while (n < body.length && (body[n]!.trim() === "" || body[n]!.trim().startsWith("--"))) n++;
  return n;
}

/** A section's statements, each with the line of the file it starts on (the section's header is `sec.line`). */
function statementsOf(sec: Section): LocatedStatement[] {
  const out: LocatedStatement[] = [];
  let line = sec.line + 1;
  for (const part of splitKeepingText(sec.body.join("\n"))) {
    const lead = part.match(/^(\s|--[^\n]*)*/)?.[0] ?? "";
    const sql = splitStatements(part)[0];
    if (sql) out.push({ sql, line: line + (lead.match(/\n/g)?.length ?? 0) });
    line += part.match(/\n/g)?.length ?? 0;
  }
  return out;
}

/** Splits at the semicolons that end statements (not inside quotes or comments), keeping every character, so line numbers can be counted. */
function splitKeepingText(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === "'" || c === '"' || c === "`") {
      const end = sql.indexOf(c, i + 1);
      i = end < 0 ? sql.length : end;
    } else if (c === "-" && sql[i + 1] === "-") {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? sql.length : end - 1;
    } else if (c === ";") {
      out.push(sql.slice(start, i + 1));
      start = i + 1;
    }
  }
  out.push(sql.slice(start));
  return out;
}

/** A statement of a SQL processor failed on an event (the event itself is named by whoever reports the failure). */
export class SqlStatementError extends KappaError {
  constructor(origin: string, type: string, stmt: LocatedStatement, cause: unknown) {
    super("SQL_PROCESSOR_FAILED", `${origin}:${stmt.line} (on ${type}): \`${stmt.sql.replace(/\s+/g, " ").slice(0, 120)}\`: ${messageOf(cause)}`, {
      hint: "fix the statement (parameters are :seq, :time, :type, :id, :data and the event's fields) and deploy again",
      cause,
    });
  }
}

function sqlHandler(origin: string, type: string, stmts: LocatedStatement[]): Handler {
  const prepared = new WeakMap<object, Statement[]>();
  return (event: KappaEvent, ctx: ProcessorContext) => {
    let list = prepared.get(ctx.db);
    if (!list) {
      list = stmts.map((s) => {
        try {
          return ctx.db.prepare(s.sql);
        } catch (err) {
          throw new SqlStatementError(origin, type, s, err);
        }
      });
      prepared.set(ctx.db, list);
    }
    const params = eventParams(event);
    list.forEach((stmt, i) => {
      try {
        stmt.run(pickParams(stmt, params));
      } catch (err) {
        throw new SqlStatementError(origin, type, stmts[i]!, err);
      }
    });
  };
}

/** Binds only the parameters a statement names, failing clearly on a missing one. */
function pickParams(stmt: Statement, params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const col of paramNames(stmt)) {
    if (!(col in params)) throw new Error(`missing parameter :${col} (the event has no such field)`);
    out[col] = params[col];
  }
  return out;
}

const namesCache = new WeakMap<Statement, string[]>();
function paramNames(stmt: Statement): string[] {
  let names = namesCache.get(stmt);
  if (!names) {
    names = [...new Set([...stmt.source.matchAll(/[:@$]([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!))];
    namesCache.set(stmt, names);
  }
  return names;
}

/** The named parameters of an event: seq, time, type, id, data and every field, nested ones joined with `__`. */
export function eventParams(event: KappaEvent): Record<string, unknown> {
  const params: Record<string, unknown> = { seq: event.seq, time: event.time, type: event.type, id: event.id, data: JSON.stringify(event.data) };
  flatten(event.data, "", params);
  return params;
}

function flatten(value: unknown, prefix: string, out: Record<string, unknown>): void {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const name = prefix ? `${prefix}__${k}` : k;
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      out[name] = JSON.stringify(v);
      flatten(v, name, out);
    } else if (Array.isArray(v)) out[name] = JSON.stringify(v);
    else if (typeof v === "boolean") out[name] = v ? 1 : 0;
    else out[name] = v;
  }
}

/** Splits SQL text into statements at semicolons outside quotes and comments. */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === "'" || c === '"' || c === "`") {
      const end = sql.indexOf(c, i + 1);
      const j = end < 0 ? sql.length : end;
      cur += sql.slice(i, j + 1);
      i = j;
    } else if (c === "-" && sql[i + 1] === "-") {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? sql.length : end;
      cur += "\n";
    } else if (c === ";") {
      if (cur.trim()) out.push(cur.trim());
      cur = "";
    } else cur += c;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}
