import type { NatsConnection } from "@nats-io/nats-core";
import type { StreamSpec } from "../log/index.js";
import { replicaShortfalls, shortfallWarning } from "../processors/index.js";

/**
 * Says at start when Kappa's buckets or output streams keep fewer replicas than asked (a warning and the
 * fixing commands as a hint); never stops the start: the data is all there, only fewer copies of it.
 */
export async function warnReplicaShortfalls(nc: NatsConnection, spec: StreamSpec, log: (line: string) => void): Promise<void> {
  const w = shortfallWarning(await replicaShortfalls(nc, spec).catch(() => []));
  if (w) log(`warning: ${w.message}\n  hint: ${w.hint}`);
}
