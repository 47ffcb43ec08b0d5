import type { JetStreamManager } from "@nats-io/jetstream";
import type { StreamSpec } from "../log/index.js";
import type { Catalog, ProcessorRecord } from "../views/index.js";
import { outputOf } from "./derived.js";
import type { VersionRunner } from "./runner.js";

/** What a worker knows that tells whether an upstream version has settled. */
export interface UpstreamView {
  spec: StreamSpec;
  jsm: JetStreamManager;
  catalog: Catalog;
  /** The versions running on this worker, by `name/version`. */
  runners: ReadonlyMap<string, VersionRunner>;
  records: ReadonlyMap<string, ProcessorRecord>;
}

/**
 * Whether an upstream version has caught up with its own input and published every emit. When it runs
 * here, its runner says so now; otherwise its catalog state and the stats its worker last reported,
 * whose checkpoint must reach the upstream's input head as it is now: a report can be old (its worker
 * stopped or died after saying "caught up"), and events that came after it are not in our input yet.
 */
export async function upstreamSettled(at: UpstreamView, src: { processor: string; version: number }): Promise<boolean> {
  const local = at.runners.get(`${src.processor}/${src.version}`);
  if (local) return local.caughtUp && local.pending === 0 && local.outboxEmpty;
  const up = at.records.get(src.processor)?.versions[String(src.version)];
  if (up?.state !== "caught-up" && up?.state !== "live") return false;
  const stats = await at.catalog.stats(src.processor, src.version).catch(() => null);
  if (stats === null || !stats.caughtUp || stats.outbox !== 0) return false;
  const input = up.source ? outputOf(at.spec.stream, up.source.processor, up.source.version) : at.spec;
  const head = (await at.jsm.streams.info(input.stream)).state.last_seq;
  return stats.checkpoint >= Math.min(head, up.untilSeq ?? head);
}
