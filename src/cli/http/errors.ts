import { InputError, KappaError, NotFoundError, messageOf } from "../../errors.js";

/** The JSON body of every error answer. */
export interface ErrorBody {
  error: string;
  message: string;
  hint?: string;
}

/** An HTTP-level refusal (authentication, a body too large, an unknown route) with its status code. */
export class HttpError extends KappaError {
  readonly status: number;
  constructor(status: number, code: string, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(code, message, opts);
    this.name = "HttpError";
    this.status = status;
  }
}

const UNAVAILABLE = new Set(["NO_LIVE_VERSION", "VIEW_MISSING", "CATALOG_UNAVAILABLE", "NATS_UNREACHABLE", "POOL_CLOSED", "SHUTTING_DOWN", "QUERY_BUSY", "TOO_MANY_STREAMS"]);
const TIMEOUT = new Set(["QUERY_TIMEOUT", "MIN_SEQ_TIMEOUT"]);
/** SQLite failures that are the server's trouble, not the query's. */
const SERVER_SIDE = /disk I\/O|malformed|disk image|out of memory|unable to open|database is locked|no such table: kappa_/i;

/**
 * The status code for an error: 400 bad input or a refused query, 404 unknown names, 504 when a query
 * or a read-your-writes wait ran out of time (not 408: clients may retry a 408 on their own), 503 when
 * a dependency or the live version is not there yet.
 */
export function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof KappaError) {
    if (TIMEOUT.has(err.code)) return 504;
    if (UNAVAILABLE.has(err.code)) return 503;
    if (err instanceof InputError || err.code.startsWith("BAD_") || err.code === "QUERY_REFUSED") return 400;
    // Any other failed statement (two statements in one, an overflow, bad JSON in json()) is the query's fault.
    if (err.code === "QUERY_FAILED" && !SERVER_SIDE.test(err.message)) return 400;
    return 500;
  }
  const fastifyStatus = (err as { statusCode?: number })?.statusCode;
  if (typeof fastifyStatus === "number" && fastifyStatus >= 400 && fastifyStatus < 500) return fastifyStatus;
  return 500;
}

const FASTIFY_CODES: Record<number, [string, string]> = {
  400: ["BAD_REQUEST", "send a JSON body, e.g. {\"sql\": \"SELECT 1\"}, with Content-Type: application/json"],
  413: ["BODY_TOO_LARGE", "request bodies are limited to 64 KiB: bind large values as params or use a named query"],
  415: ["UNSUPPORTED_MEDIA_TYPE", "send Content-Type: application/json"],
};

/** The JSON body for an error; internal errors keep their message but say they are not the caller's fault. */
export function bodyOf(err: unknown): ErrorBody {
  if (err instanceof KappaError) return { error: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
  const status = statusOf(err);
  const known = FASTIFY_CODES[status];
  if (known) return { error: known[0], message: messageOf(err), hint: known[1] };
  if (status < 500) return { error: "BAD_REQUEST", message: messageOf(err) };
  return { error: "INTERNAL", message: messageOf(err), hint: "this is a bug in kappa serve; the server keeps running — please report it with the request" };
}
