import type { FastifySchema } from "fastify";
import { InputError } from "../../errors.js";

/**
 * The JSON schemas of the read side's routes. Fastify validates every request against them (with the
 * options in `VALIDATION`), and `/openapi.json` is generated from the same objects, so the document
 * cannot drift from what the server accepts. Limits that depend on the server's flags (row and time
 * ceilings) are checked by the handlers after these.
 */

const PROCESSOR = { type: "string", pattern: "^[a-z0-9_]+$", description: "processor name ([a-z0-9_]+)" } as const;
const QUERY_NAME = { type: "string", description: "a named query of the live version (see `GET /views/:processor`)" } as const;
const ERROR = {
  type: "object",
  description: "every error: a stable code, what happened and what to do next",
  properties: { error: { type: "string" }, message: { type: "string" }, hint: { type: "string" } },
  required: ["error", "message"],
} as const;
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ERROR]));
/** JSON answers are open objects (fastify serializes with these, and would drop fields a closed one does not list); text answers carry no response schema, only a description. */
const ok = (description: string) => ({ 200: { type: "object", description, additionalProperties: true } });

const CONTROLS = {
  version: { type: ["integer", "string"], description: "read this version instead of the live one (a number, or `v2`)" },
  minSeq: { type: "integer", minimum: 0, description: "wait until the version has applied this sequence (read-your-writes)" },
  limit: { type: "integer", minimum: 1, description: "return the first this many rows, the rest cut (`truncated: true`); without it, more rows than the server's cap (--max-result-rows) are refused with RESULT_TOO_LARGE" },
  timeoutMs: { type: "integer", minimum: 1, description: "give up after this long (server ceiling: --max-timeout)" },
  maxBytes: { type: "integer", minimum: 1, description: "most bytes of rows to return (server ceiling: --max-result-bytes)" },
} as const;

/** How fastify's validator is set up for these schemas: no type coercion and nothing removed, so a wrong type is refused, not silently changed. */
export const VALIDATION = { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, verbose: true, allowUnionTypes: true } } as const;

/** Turns a schema failure into the same one-line InputError the handlers give, naming the field. */
export function schemaError(errs: { instancePath?: string; message?: string; keyword?: string; params?: Record<string, unknown>; data?: unknown }[], where: string): Error {
  const e = errs[0];
  const field = e?.instancePath ? e.instancePath.replace(/^\//, "").replaceAll("/", ".") : where;
  if (e?.keyword === "pattern" && field === "processor") {
    return new InputError(`processor name ${JSON.stringify(e.data ?? "")} is not valid: use [a-z0-9_]`, { hint: "`GET /views` lists the processors" });
  }
  if (e?.keyword === "required") return new InputError(`${where}.${String(e.params?.missingProperty)} is missing`, { hint: "see GET /openapi.json (or docs/http.md) for the shape of each request" });
  const what = e?.keyword === "type" ? `must be ${/^[aeiou]/.test(String(e.params?.type)) ? "an" : "a"} ${String(e.params?.type).replace(",", " or ")}` : e?.message ?? "is invalid";
  return new InputError(`${field} ${what}`, { hint: "see GET /openapi.json (or docs/http.md) for the shape of each request" });
}

/** `GET /views`. */
export const VIEWS: FastifySchema = {
  summary: "Every processor with its live version, lag and named queries",
  tags: ["views"],
  response: { ...ok("`{nats, logHead, processors: [{name, live, seq, lag, eventsPerSec, versions, queries}]}`"), ...errors(401, 403) },
};

/** `GET /views/:processor`. */
export const VIEW: FastifySchema = {
  summary: "Every version of one processor: state, checkpoint, log head, lag, events/s, ETA, dead letters, error",
  tags: ["views"],
  params: { type: "object", properties: { processor: PROCESSOR }, required: ["processor"] },
  response: { ...ok("`{name, live, versions: [...], queries}`"), ...errors(400, 404) },
};

/** `POST /views/:processor/query`. */
export const QUERY: FastifySchema = {
  summary: "Read-only SQL (or a named query) against the live version",
  tags: ["queries"],
  params: { type: "object", properties: { processor: PROCESSOR }, required: ["processor"] },
  body: {
    type: "object",
    required: ["sql"],
    properties: {
      sql: { type: "string", description: "a SELECT (or WITH … SELECT), or the name of a named query" },
      params: { type: "object", description: "named parameters: `:user` binds `params.user`", additionalProperties: { type: ["string", "number", "boolean", "null"] } },
      ...CONTROLS,
    },
  },
  response: { ...ok("`{processor, version, seq, named?, columns, rows, truncated}`"), ...errors(400, 404, 413, 415, 503, 504) },
};

/** `GET /views/:processor/queries/:name`. */
export const NAMED_QUERY: FastifySchema = {
  summary: "A named query; every other query-string key binds as a parameter",
  tags: ["queries"],
  params: { type: "object", properties: { processor: PROCESSOR, name: QUERY_NAME }, required: ["processor", "name"] },
  querystring: { type: "object", properties: { version: { type: "string" }, minSeq: { type: "string" }, limit: { type: "string" }, timeoutMs: { type: "string" }, maxBytes: { type: "string" } }, additionalProperties: true },
  response: { ...ok("`{processor, version, seq, named, columns, rows, truncated}`"), ...errors(400, 404, 503, 504) },
};

/** `GET /views/:processor/changes`. */
export const CHANGES: FastifySchema = {
  summary: "Server-Sent Events: `commit` per batch the live version commits, `live` on a swap, and with `?query=` the named query's `result` whenever it changed",
  tags: ["views"],
  params: { type: "object", properties: { processor: PROCESSOR }, required: ["processor"] },
  querystring: { type: "object", properties: { query: QUERY_NAME }, additionalProperties: true },
  description: "Content-Type: text/event-stream",
};

/** `GET /metrics`. */
export const METRICS: FastifySchema = {
  summary: "Prometheus text: per version checkpoint, log head, lag, events/s, events applied, batch apply durations, state, live",
  tags: ["operations"],
  description: "Content-Type: text/plain; version=0.0.4 (Prometheus text format)",
};

/** `GET /healthz`. */
export const HEALTH: FastifySchema = {
  summary: "`{status: ok|degraded|unavailable, nats, views, uptimeSeconds}`; 200 for ok and degraded, 503 for unavailable",
  tags: ["operations"],
  response: { ...ok("`{status, nats, views, uptimeSeconds}`"), 503: { type: "object", additionalProperties: true } },
};

/** `GET /`, `GET /assets/:name` and `GET /events/status`. */
export const STATUS_PAGE: FastifySchema = { summary: "The status page", description: "Content-Type: text/html", tags: ["status page"] };
export const ASSETS: FastifySchema = {
  summary: "The status page's script and styles, and the uPlot charting library (served locally: no CDN)",
  tags: ["status page"],
  params: { type: "object", properties: { name: { type: "string", enum: ["status.js", "status.css", "uPlot.iife.min.js", "uPlot.min.css"] } }, required: ["name"] },
  description: "Content-Type: text/javascript or text/css",
};
export const STATUS_EVENTS: FastifySchema = {
  summary: "Server-Sent Events for the status page: `history` on connect, `sample` every second, `status` when anything changed",
  tags: ["status page"],
  description: "Content-Type: text/event-stream",
};
export const OPENAPI: FastifySchema = { summary: "This document", tags: ["operations"], response: ok("OpenAPI 3.1") };
