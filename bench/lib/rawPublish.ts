/**
 * The baseline append: a bare pipelined publish loop. Core publishes with a reply subject under one
 * wildcard inbox, the same `Nats-Msg-Id` header Kappa sets, a window of acks in flight, acks parsed
 * for their sequence and errors — and nothing else (no promise or record per message).
 */
import { createInbox, headers, type NatsConnection } from "@nats-io/nats-core";
import type { OutgoingEvent } from "../../src/log/index.js";

/** What a raw publish run stored. */
export interface RawPublishResult {
  count: number;
  lastSeq: number;
  duplicates: number;
}

/** Publishes every event and waits for every ack; fails on the first error ack or when acks stop for 30 s. */
export async function rawPublish(
  nc: NatsConnection,
  prefix: string,
  events: Iterable<OutgoingEvent>,
  opts: { window?: number; onProgress?: (acked: number) => void } = {},
): Promise<RawPublishResult> {
  const window = opts.window ?? 10_000;
  const inbox = createInbox() + ".";
  const enc = new TextEncoder();
  let inflight = 0;
  let acked = 0;
  let lastSeq = 0;
  let duplicates = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  let lastAckAt = Date.now();
  const sub = nc.subscribe(inbox + "*", {
    callback: (err, m) => {
      inflight--;
      acked++;
      lastAckAt = Date.now();
      if (err) failure ??= err;
      else {
        const ack = JSON.parse(m.string()) as { seq?: number; duplicate?: boolean; error?: { description: string } };
        if (ack.error) failure ??= new Error(`publish refused: ${ack.error.description}`);
        else {
          if (ack.seq! > lastSeq) lastSeq = ack.seq!;
          if (ack.duplicate) duplicates++;
        }
      }
      if ((acked & 0x3fff) === 0) opts.onProgress?.(acked);
      if (wake) {
        const w = wake;
        wake = undefined;
        w();
      }
    },
  });
  const watchdog = setInterval(() => {
    if (inflight > 0 && Date.now() - lastAckAt > 30_000) {
      failure ??= new Error("no publish ack for 30 s");
      wake?.();
    }
  }, 1000);
  let count = 0;
  try {
    for (const ev of events) {
      while (inflight >= window && !failure) await new Promise<void>((r) => (wake = r));
      if (failure) break;
      const h = headers();
      h.set("Nats-Msg-Id", ev.id);
      nc.publish(`${prefix}.${ev.type}`, enc.encode(ev.json), { reply: inbox + count, headers: h });
      inflight++;
      count++;
    }
    while (inflight > 0 && !failure) await new Promise<void>((r) => (wake = r));
  } finally {
    clearInterval(watchdog);
    sub.unsubscribe();
  }
  if (failure) throw failure;
  opts.onProgress?.(acked);
  return { count, lastSeq, duplicates };
}
