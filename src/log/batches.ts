import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import { wrapJsError } from "./stream.js";
import { DEFAULT_LIMITS, startOptions, type LogBatch, type ReadSpec } from "./reader.js";
import { RawEventDecoder, type RawEvent } from "./rawEvent.js";

/**
 * The log from an offset as an async stream of batches. Pull-based: the client fetches more only as
 * the caller asks for the next batch, so a slow consumer (a pipe, a remote socket) holds memory at one
 * pull window. A batch closes at the event or byte cap, or as soon as nothing more is pending.
 * With `follow: false` the stream ends once the reader has caught up with the log.
 */
export async function* readBatches(js: JetStreamClient, spec: ReadSpec & { follow?: boolean }): AsyncGenerator<LogBatch> {
  const limits = { ...DEFAULT_LIMITS, ...spec.limits };
  let messages;
  try {
    const consumer = await js.consumers.get(spec.stream, startOptions(spec));
    messages = await consumer.consume({ max_messages: spec.prefetch ?? Math.min(10_000, limits.maxEvents * 2) });
  } catch (err) {
    throw wrapJsError(err, spec.stream);
  }
  const decoder = new RawEventDecoder(spec.prefix.length + 1, spec.timeHeader === true);
  let events: RawEvent[] = [];
  let bytes = 0;
  try {
    for await (const m of messages as AsyncIterable<JsMsg>) {
      const info = m.info;
      const ev = decoder.decode(m, info.timestampNanos);
      events.push(ev);
      bytes += ev.data.length;
      if (info.pending === 0 || events.length >= limits.maxEvents || bytes >= limits.maxBytes) {
        yield { events, bytes, lastSeq: m.seq, pending: info.pending };
        events = [];
        bytes = 0;
        if (info.pending === 0 && !spec.follow) return;
      }
    }
  } finally {
    messages.stop();
  }
}
