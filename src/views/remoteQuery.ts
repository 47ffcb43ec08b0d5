import { headers as makeHeaders, type NatsConnection } from "@nats-io/nats-core";
import { InputError, KappaError, UnavailableError, messageOf } from "../errors.js";
import type { QueryAnswer, QueryRequest } from "./query.js";
import { validateProcessorName } from "./paths.js";
import { errorOf, isFinal, type RemoteError } from "./remoteErrors.js";

export { RETRY_ELSEWHERE, faultOf, isFinal, type RemoteError, type RemoteFault } from "./remoteErrors.js";

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

/** A query as it travels over NATS. */
export type RemoteQueryRequest = Omit<QueryRequest, "processor" | "arrivedAt"> & {
  /**
   * How stale an answer may be. Absent: the default bound — a replica answers only once it has applied what
   * the most advanced replica of the version last reported (heartbeats, once a second). A number: a replica
   * further behind the input stream's head (asked at that moment) than this many events refuses. `"any"`:
   * every replica answers, at any lag.
   */
  maxStaleness?: number | "any";
  /**
   * Monotonic reads: per version (key: the version number), the highest seq the caller has seen an answer
   * at. A replica behind it for the version it would answer from refuses, so answers never go backwards.
   */
  seen?: Record<string, number>;
};

/** The answer, naming the worker that gave it. */
export interface RemoteAnswer extends QueryAnswer {
  worker: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The hint when every replica refused or failed for a reason of its own. */
function unavailableHint(errors: RemoteError[]): string {
  if (errors.length > 0 && errors.every((e) => e.code === "STALE")) {
    return "every replica that answered is behind the bound: wait for them to catch up (`kappa status`), or accept a lagging answer with --max-staleness any (or a larger number)";
  }
  return errors.at(-1)?.hint ?? "check `kappa status` for the workers holding it, their lag and failures";
}

/**
 * Asks the replicas of a processor (a queue group: one answers) and retries elsewhere on any error local to
 * the replica that answered (stale, busy, a damaged or missing file, a version it does not hold, a JetStream
 * timeout), a worker that died mid-request, or nobody listening for a moment (a restart, a server failover),
 * until the query's own timeout. Only the query's own errors (bad SQL, a refused statement) are final. The
 * answer names the worker that gave it.
 */
export async function remoteQuery(nc: NatsConnection, stream: string, processor: string, req: RemoteQueryRequest): Promise<RemoteAnswer> {
  validateProcessorName(processor);
  const timeoutMs = req.timeoutMs ?? 5000;
  const deadline = Date.now() + timeoutMs;
  const subject = querySubject(stream, processor);
  // The latest refusal of each replica, for a final error that says what each one said.
  const refusals = new Map<string, RemoteError>();
  let silence = "no attempt";
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
      if (isFinal(err)) {
        // The query as typed must change (exit 2, as for a local query), unless an older worker could not say.
        const opts = { code: err.code, ...(err.hint ? { hint: err.hint } : {}) };
        throw err.fault === "query" ? new InputError(`${err.message} (answered by ${err.worker})`, opts) : new KappaError(err.code, `${err.message} (answered by ${err.worker})`, opts);
      }
      refusals.delete(err.worker);
      refusals.set(err.worker, err);
    } catch (err) {
      if (err instanceof KappaError) throw err;
      silence = messageOf(err);
    }
    // The first retries go out at once (the queue group likely picks another replica), later ones back off.
    await sleep(Math.min(200, 5 * 2 ** Math.min(attempt, 6)));
  }
  if (refusals.size > 0) {
    const errors = [...refusals.values()];
    const said = errors.map((e) => (refusals.size > 1 ? `${e.worker}: ${e.message}` : `${e.message} (${e.worker})`)).join("; ");
    throw new UnavailableError("REMOTE_QUERY_FAILED", `no replica of ${processor} answered within ${timeoutMs} ms: ${said}`, { hint: unavailableHint(errors) });
  }
  throw new UnavailableError("REMOTE_QUERY_FAILED", `no worker answered queries on ${processor} within ${timeoutMs} ms (${silence})`, {
    hint: "start `kappa run` on a worker that holds it (see `kappa status`, workers section), or raise --timeout",
  });
}
