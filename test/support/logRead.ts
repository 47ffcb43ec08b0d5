import { createHash } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { readBatches, type StreamSpec } from "../../src/log/index.js";

/** One stored event as the log holds it. */
export interface LoggedEvent {
  seq: number;
  type: string;
  id: string;
  data: string;
}

/** Every event in the stream, in order. */
export async function readLog(nc: NatsConnection, spec: StreamSpec): Promise<LoggedEvent[]> {
  const info = await (await jetstreamManager(nc)).streams.info(spec.stream);
  if (info.state.messages === 0) return [];
  const out: LoggedEvent[] = [];
  const dec = new TextDecoder();
  for await (const b of readBatches(jetstream(nc), { stream: spec.stream, prefix: spec.prefix })) {
    for (const e of b.events) out.push({ seq: e.seq, type: e.type, id: e.id, data: dec.decode(e.data) });
  }
  return out;
}

/** A digest of a set of events by content (type, id, data), independent of order and sequence. */
export function eventDigest(events: { type: string; id: string; data: string }[]): string {
  const lines = events.map((e) => `${e.type}\t${e.id}\t${e.data}`).sort();
  return createHash("sha256").update(lines.join("\n")).digest("hex");
}
