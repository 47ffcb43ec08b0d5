import { jetstreamManager, StorageType, DiscardPolicy, RetentionPolicy } from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/nats-core";
import { wrapJsError, isNotFound } from "../log/index.js";

/** The stream that holds what processors emit: subjects `derived.<processor>.v<version>.<type>`. */
export function derivedStreamName(stream: string): string {
  return `${stream}_DERIVED`;
}

/** The subject prefix of one version's output. */
export function outputPrefix(processor: string, version: number): string {
  return `derived.${processor}.v${version}`;
}

/** Creates the derived stream if missing; append-only like the main log, with a long duplicate window so republishing after a crash is dropped. */
export async function ensureDerivedStream(nc: NatsConnection, stream: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const name = derivedStreamName(stream);
  try {
    await jsm.streams.info(name);
    return;
  } catch (err) {
    if (!isNotFound(err)) throw wrapJsError(err, name);
  }
  await jsm.streams.add({
    name,
    subjects: ["derived.>"],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    deny_delete: true,
    deny_purge: true,
    duplicate_window: nanos(60 * 60 * 1000),
  });
}
