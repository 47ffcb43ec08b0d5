import { headers as makeHeaders, type NatsConnection, type Msg } from "@nats-io/nats-core";
import { KappaError, UnavailableError, messageOf } from "../errors.js";
import type { QueryAnswer, QueryRequest } from "./query.js";
import { validateProcessorName } from "./paths.js";

/** The NATS service name every worker registers its query endpoints under (`nats micro list` shows it). */
export const QUERY_SERVICE = "kappa-query";
/** Queue group of the query endpoints: one replica answers each request. */
export const QUERY_QUEUE = "kappa-query";

/** The request subject for queries on one processor of a stream: only workers holding it listen there. */
export function querySubject(stream: string, processor: string): string {
  return `kappa.${stream}.query.${processor}`;
}

/** The request subject for `kappa snapshot` on one processor. */
export function snapshotSubject(stream: string, processor: string): string {
  return `kappa.${stream}.snapshot.${processor}`;
}

/** Asks a worker holding the version to store a snapshot of it; resolves to what was stored and by whom. */
export async function requestSnapshot<T>(nc: NatsConnection, stream: string, processor: string, version: number | undefined, timeoutMs: number): Promise<T & { worker: string }> {
  validateProcessorName(processor);
  const deadline = Date.now() + timeoutMs;
  let last = "no attempt";
  while (Date.now() < deadline) {
    try {
      const m = await nc.request(snapshotSubject(stream, processor), JSON.stringify(version === undefined ? {} : { version }), { timeout: Math.max(100, deadline - Date.now()) });
      const err = errorOf(m);
      if (!err) return m.json<T & { worker: string }>();
      if (!RETRY_ELSEWHERE.has(err.code)) throw new KappaError(err.code, `${err.message} (answered by ${err.worker})`, err.hint ? { hint: err.hint } : {});
      last = err.message;
    } catch (err) {
      if (err instanceof KappaError) throw err;
      last = messageOf(err);
    }
    await sleep(200);
  }
  throw new UnavailableError("SNAPSHOT_FAILED", `no worker took a snapshot of ${processor} within ${timeoutMs} ms (${last})`, {
    hint: "a worker holding it must be running (`kappa status`, workers section); raise --timeout for a large view",
  });
}

/** A query as it travels over NATS. */
export type RemoteQueryRequest = Omit<QueryRequest, "processor" | "arrivedAt"> & {
  /** A replica further behind the log than this many events does not answer (another one does). */
  maxStaleness?: number;
};

/** The answer, naming the worker that gave it. */
export interface RemoteAnswer extends QueryAnswer {
  worker: string;
}

/** Service error codes: these say "ask another replica", anything else is the query's own answer. */
export const RETRY_ELSEWHERE = new Set(["STALE", "NOT_HELD", "QUERY_BUSY", "VIEW_MISSING", "MIN_SEQ_TIMEOUT"]);

/** The error reply of a worker: the Kappa error code, message and hint in the body. */
export interface RemoteError {
  code: string;
  message: string;
  hint?: string;
  worker: string;
}

function errorOf(m: Msg): RemoteError | null {
  if (!m.headers?.get("Nats-Service-Error-Code")) return null;
  try {
    return m.json<RemoteError>();
  } catch {
    return { code: "REMOTE_ERROR", message: m.headers.get("Nats-Service-Error") ?? "error", worker: "?" };
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Asks the replicas of a processor (a queue group: one answers) and retries elsewhere on a stale or busy
 * replica, a worker that died mid-request, or nobody listening for a moment (a restart, a server failover),
 * until the query's own timeout. The answer names the worker that gave it.
 */
export async function remoteQuery(nc: NatsConnection, stream: string, processor: string, req: RemoteQueryRequest): Promise<RemoteAnswer> {
  validateProcessorName(processor);
  const timeoutMs = req.timeoutMs ?? 5000;
  const deadline = Date.now() + timeoutMs;
  const subject = querySubject(stream, processor);
  let last: RemoteError | string = "no attempt";
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    const left = deadline - Date.now();
    // One attempt may not use the whole budget: a replica that vanished mid-request must leave time for another.
    const wait = Math.max(200, Math.min(left, Math.max(1000, timeoutMs / 2)));
    const h = makeHeaders();
    h.set("Kappa-Deadline", String(Date.now() + wait - 50));
    try {
      const m = await nc.request(subject, JSON.stringify({ ...req, timeoutMs: Math.max(50, wait - 100) }), { timeout: wait, headers: h });
      const err = errorOf(m);
      if (!err) return m.json<RemoteAnswer>();
      if (!RETRY_ELSEWHERE.has(err.code)) throw new KappaError(err.code, `${err.message} (answered by ${err.worker})`, err.hint ? { hint: err.hint } : {});
      last = err;
    } catch (err) {
      if (err instanceof KappaError) throw err;
      last = messageOf(err);
    }
    await sleep(Math.min(200, 20 * 2 ** Math.min(attempt, 4)));
  }
  if (typeof last !== "string") {
    throw new UnavailableError("REMOTE_QUERY_FAILED", `no replica of ${processor} answered within ${timeoutMs} ms: ${last.message} (${last.worker})`, { hint: last.hint ?? "check `kappa status` for the workers holding it and their lag" });
  }
  throw new UnavailableError("REMOTE_QUERY_FAILED", `no worker answered queries on ${processor} within ${timeoutMs} ms (${last})`, {
    hint: "start `kappa run` on a worker that holds it (see `kappa status`, workers section), or raise --timeout",
  });
}
