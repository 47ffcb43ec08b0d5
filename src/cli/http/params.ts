import { InputError } from "../../errors.js";
import { parseVersion } from "../../views/index.js";

/** How a query runs, as a request may set it. */
export interface QueryControls {
  version?: number;
  minSeq?: number;
  /** The first this many rows, the rest cut (`truncated: true`); absent: no cut, the row cap applies. */
  limit?: number;
  /** The server's cap on rows: more (and no smaller limit) is RESULT_TOO_LARGE. */
  maxRows: number;
  timeoutMs: number;
  maxBytes: number;
}

/** The ceilings a server puts on what a request may ask for. */
export interface QueryLimits {
  /** The cap on one answer's rows (--max-result-rows); `limit` may ask for fewer. */
  maxRows: number;
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  /** The server's cap on one answer's bytes; requests may ask for less. */
  maxBytes: number;
}

/** Query-string keys that steer a named query instead of binding a parameter. */
export const CONTROL_KEYS = new Set(["version", "minSeq", "limit", "timeoutMs", "maxBytes"]);

const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?$/;

/** A query-string value as a parameter: numeric strings bind as numbers (without leading zeros, so "007" stays text). */
export function paramValue(raw: string): string | number {
  if (!NUMBER.test(raw)) return raw;
  const n = Number(raw);
  return Number.isFinite(n) && (!Number.isInteger(n) || Number.isSafeInteger(n)) ? n : raw;
}

/** Binds the query string's keys (other than `reserved`) as named parameters; `:n`, `@n` and `$n` all name `n`. */
export function queryStringParams(query: Record<string, unknown>, reserved: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(query)) {
    if (reserved.has(key)) continue;
    if (typeof value !== "string") throw new InputError(`parameter ${key} is given more than once`, { hint: "give each parameter once" });
    out[key.replace(/^[:@$]/, "")] = paramValue(value);
  }
  return out;
}

function intIn(name: string, raw: unknown, min: number, max: number, flag?: string): number | undefined {
  if (raw === undefined || raw === null || raw === "") return undefined;
  const n = typeof raw === "string" ? Number(raw) : raw;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw new InputError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`, { hint: `fix ${name} in the request${flag ? `; ${max} is this server's ceiling (an operator can raise \`kappa serve ${flag}\`)` : ""}` });
  }
  return n;
}

/** Reads version, minSeq, limit, timeoutMs and maxBytes from a body or query string, checking each against the server's limits. */
export function queryControls(src: Record<string, unknown>, limits: QueryLimits): QueryControls {
  const version = src.version === undefined || src.version === null || src.version === "" ? undefined : parseVersion(src.version as string | number);
  const minSeq = intIn("minSeq", src.minSeq, 0, Number.MAX_SAFE_INTEGER);
  const limit = intIn("limit", src.limit, 1, limits.maxRows, "--max-result-rows");
  return {
    ...(version !== undefined ? { version } : {}),
    ...(minSeq !== undefined ? { minSeq } : {}),
    ...(limit !== undefined ? { limit } : {}),
    maxRows: limits.maxRows,
    timeoutMs: intIn("timeoutMs", src.timeoutMs, 1, limits.maxTimeoutMs) ?? limits.defaultTimeoutMs,
    maxBytes: intIn("maxBytes", src.maxBytes, 1, limits.maxBytes, "--max-result-bytes") ?? limits.maxBytes,
  };
}

const BODY_KEYS = new Set(["sql", "params", "version", "minSeq", "limit", "timeoutMs", "maxBytes"]);

/** Checks a `POST /views/:processor/query` body: `sql` text, `params` an object, no unknown keys (a typo would silently do nothing). */
export function queryBody(body: unknown, limits: QueryLimits): { sql: string; params: Record<string, unknown> } & QueryControls {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new InputError("the body must be a JSON object", { hint: 'e.g. {"sql": "SELECT * FROM totals LIMIT 10"}' });
  }
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !BODY_KEYS.has(k));
  if (unknown.length) throw new InputError(`unknown field${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}`, { hint: `fields: ${[...BODY_KEYS].join(", ")}` });
  if (typeof b.sql !== "string") throw new InputError("sql must be a string: a SELECT or the name of a named query", { hint: 'e.g. {"sql": "SELECT * FROM totals LIMIT 10"}' });
  if (b.params !== undefined && (typeof b.params !== "object" || b.params === null || Array.isArray(b.params))) {
    throw new InputError("params must be an object of named parameters", { hint: 'e.g. {"sql": "SELECT * FROM totals WHERE user_id = :user", "params": {"user": "u1"}}' });
  }
  const params: Record<string, unknown> = {};
  for (const [k, v] of Object.entries((b.params ?? {}) as Record<string, unknown>)) {
    if (v !== null && typeof v === "object") throw new InputError(`parameter ${k} is an object; bind numbers, strings, booleans or null`, { hint: "pass JSON text as a string and use json_extract() in SQL" });
    params[k.replace(/^[:@$]/, "")] = typeof v === "boolean" ? (v ? 1 : 0) : v;
  }
  return { sql: b.sql, params, ...queryControls(b, limits) };
}
