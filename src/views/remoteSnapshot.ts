import type { NatsConnection } from "@nats-io/nats-core";
import { KappaError, UnavailableError, messageOf } from "../errors.js";
import { validateProcessorName } from "./paths.js";
import { errorOf, isFinal } from "./remoteErrors.js";
import { snapshotSubject } from "./remoteQuery.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Asks the version's writer to store a snapshot of it (the other replicas refuse, and the request goes on
 * until the writer gets it); resolves to what was stored and by whom. A refusal that retrying cannot change
 * (too soon after the last one, no such version) is final.
 */
export async function requestSnapshot<T>(nc: NatsConnection, stream: string, processor: string, version: number | undefined, timeoutMs: number): Promise<T & { worker: string }> {
  validateProcessorName(processor);
  const deadline = Date.now() + timeoutMs;
  let last = "no attempt";
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    try {
      const m = await nc.request(snapshotSubject(stream, processor), JSON.stringify(version === undefined ? {} : { version }), { timeout: Math.max(100, deadline - Date.now()) });
      const err = errorOf(m);
      if (!err) return m.json<T & { worker: string }>();
      if (isFinal(err)) throw new KappaError(err.code, `${err.message} (answered by ${err.worker})`, err.hint ? { hint: err.hint } : {});
      last = `${err.message} (${err.worker})`;
    } catch (err) {
      if (err instanceof KappaError) throw err;
      last = messageOf(err);
    }
    // Quick at first: with a queue group, the next attempt likely reaches another replica (the writer).
    await sleep(Math.min(200, 5 * 2 ** Math.min(attempt, 6)));
  }
  throw new UnavailableError("SNAPSHOT_FAILED", `no worker took a snapshot of ${processor} within ${timeoutMs} ms (${last})`, {
    hint: "a worker holding it must be running (`kappa status`, workers section); raise --timeout for a large view",
  });
}
