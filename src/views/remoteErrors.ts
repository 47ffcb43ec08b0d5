import type { Msg } from "@nats-io/nats-core";
import { InputError } from "../errors.js";

/**
 * Whose fault a worker's error reply is. `query`: the query's own (bad SQL, a refused statement, a result
 * over the caps, a version or named query the catalog does not have): every replica would say the same, so
 * it is final. `replica`: local to the worker that answered (a damaged or missing view file, a version it
 * does not hold or cannot serve yet, lag, a JetStream timeout, a busy or closing query pool): another
 * replica may answer.
 */
export type RemoteFault = "query" | "replica";

/** The error reply of a worker: the Kappa error code, message and hint in the body, and whose fault it is. */
export interface RemoteError {
  code: string;
  message: string;
  hint?: string;
  worker: string;
  /** Absent in replies of workers from before it was reported: the code decides then (RETRY_ELSEWHERE). */
  fault?: RemoteFault;
}

/** Error codes that workers from before `fault` existed sent for "ask another replica". */
export const RETRY_ELSEWHERE = new Set(["STALE", "NOT_HELD", "QUERY_BUSY", "VIEW_MISSING", "MIN_SEQ_TIMEOUT"]);

/** Codes that are the query's own fault whatever class raised them. */
const QUERY_CODES = new Set(["QUERY_REFUSED", "MISSING_PARAM", "RESULT_TOO_LARGE", "BAD_NAME"]);

/**
 * Whose fault an error raised while reading a view is (see RemoteFault). Only errors about the request
 * itself are the query's: SQL that does not compile or is refused, a missing parameter, a result over the
 * caps. Everything else — and anything unforeseen — is the replica's, so another replica gets a chance
 * before the deadline. Errors that depend on the replica's copy of the catalog are decided by the caller.
 */
export function faultOf(err: unknown): RemoteFault {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === "string" && QUERY_CODES.has(code)) return "query";
  // QUERY_FAILED is an InputError when SQLite rejected the SQL, a plain KappaError when the file did.
  if (err instanceof InputError && (code === "QUERY_FAILED" || code === "BAD_INPUT")) return "query";
  return "replica";
}

/** True when the reply is final: another replica would answer the same. */
export function isFinal(e: RemoteError): boolean {
  return e.fault ? e.fault === "query" : !RETRY_ELSEWHERE.has(e.code);
}

/** The error carried by a NATS service reply, or null for an answer. */
export function errorOf(m: Msg): RemoteError | null {
  if (!m.headers?.get("Nats-Service-Error-Code")) return null;
  try {
    return m.json<RemoteError>();
  } catch {
    return { code: "REMOTE_ERROR", message: m.headers.get("Nats-Service-Error") ?? "error", worker: "?" };
  }
}
