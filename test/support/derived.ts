import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { LogSubscription } from "../../src/log/index.js";

/** Every event a processor version emitted, in stream order: [type, data JSON, id]. Writer fences are no events and are left out. */
export async function readOutput(nc: NatsConnection, { stream, prefix }: { stream: string; prefix: string }): Promise<[string, string, string][]> {
  const out: [string, string, string][] = [];
  const jsm = await jetstreamManager(nc);
  // The last event (not fence) in the stream now: read until it has arrived.
  const last = await jsm.streams.getMessage(stream, { last_by_subj: `${prefix}.>` }).catch(() => null);
  if (!last) return out;
  const dec = new TextDecoder();
  await new Promise<void>((resolve, reject) => {
    let sub: LogSubscription | undefined;
    let done = false;
    LogSubscription.open(jetstream(nc), { stream, prefix }, (b) => {
      for (const e of b.events) out.push([e.type, dec.decode(e.data), e.id]);
      if (b.lastSeq >= last.seq && !done) {
        done = true;
        void sub?.stop().then(resolve);
      }
    }).then((s) => {
      sub = s;
      if (done) void s.stop().then(resolve);
    }, reject);
  });
  return out;
}
