import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { LogSubscription, nextMatchingSeq } from "../../src/log/index.js";
import { jetstreamManager } from "@nats-io/jetstream";

/** Every event a processor version emitted, in stream order: [type, data JSON, id]. */
export async function readOutput(nc: NatsConnection, { stream, prefix }: { stream: string; prefix: string }): Promise<[string, string, string][]> {
  const out: [string, string, string][] = [];
  const first = await nextMatchingSeq(await jetstreamManager(nc), stream, prefix, undefined, 0).catch(() => null);
  if (first === null) return out;
  const dec = new TextDecoder();
  await new Promise<void>((resolve, reject) => {
    let sub: LogSubscription | undefined;
    let done = false;
    LogSubscription.open(jetstream(nc), { stream, prefix }, (b) => {
      for (const e of b.events) out.push([e.type, dec.decode(e.data), e.id]);
      if (b.pending === 0 && !done) {
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
