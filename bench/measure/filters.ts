/**
 * 9. The two nats-server 2.9 work-arounds, measured again on the current server (issue 11):
 *  A. Readers take no server-side filter (2.9 delivered a filtered consumer that starts at a sequence at a
 *     few hundred events/s): an ordered consumer from sequence 2 with `filter_subjects` on one event type,
 *     against reading everything and filtering in the client, until the last event of that type.
 *  B. One output stream per processor version (so downstream readers need no filter): one version's
 *     output read from its own stream, against the same events read with a filter from one stream that
 *     holds four versions' outputs interleaved.
 */
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { SPEC, startServer, connect, fill, readCorpus } from "../lib/env.js";
import { rawPublish } from "../lib/rawPublish.js";
import { withScope } from "../lib/scope.js";
import { Progress } from "../lib/progress.js";
import { rate } from "../lib/stats.js";

export interface FilterRead {
  /** Events of the wanted type(s) delivered to the client, and how many the stream holds. */
  matching: number;
  total: number;
  /** Matching events per second, from consumer creation to the last matching event. */
  unfiltered: number;
  filtered: number;
}

export interface FiltersResult {
  server: string;
  /** A: per event type in the orders corpus. */
  byType: Record<string, FilterRead>;
  /** B: one version's output, own stream vs shared stream with a filter. */
  outputs: { perVersion: number; versions: number; ownStream: number; sharedFiltered: number };
}

const dec = new TextDecoder();

/** Reads with an ordered consumer until `count` messages that pass `keep` have arrived; returns ms. */
async function timedRead(js: JetStreamClient, stream: string, count: number, opts: { filter?: string; keep?: (subject: string) => boolean; startSeq?: number }, label: string): Promise<number> {
  const start = opts.startSeq && opts.startSeq > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: opts.startSeq } : { deliver_policy: DeliverPolicy.All };
  const bar = new Progress(label, count);
  const t0 = performance.now();
  const c = await js.consumers.get(stream, { ...start, ...(opts.filter ? { filter_subjects: [opts.filter] } : {}) });
  let seen = 0;
  let sink = 0;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const msgs = await c.consume({
    max_messages: 10_000,
    callback: (m: JsMsg) => {
      if (opts.keep && !opts.keep(m.subject)) return;
      sink += (JSON.parse(dec.decode(m.data)) as { amount?: number }).amount ? 1 : 0;
      if ((++seen & 0x3fff) === 0) bar.update(seen);
      if (seen === count) finish();
    },
  });
  await Promise.race([done, msgs.closed().then(() => Promise.reject(new Error(`${label}: the consumer closed after ${seen} of ${count}`)))]);
  const ms = performance.now() - t0;
  msgs.stop();
  bar.stop();
  if (sink < 0) console.log(sink);
  return ms;
}

/** A: every event type of the corpus, filtered on the server vs in the client, both from sequence 2. */
async function byType(js: JetStreamClient, corpus: string, total: number): Promise<Record<string, FilterRead>> {
  const counts = new Map<string, number>();
  let first = true;
  for (const e of readCorpus(corpus)) {
    if (first) {
      first = false; // reading starts at sequence 2: the first event is not counted
      continue;
    }
    counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
  }
  const out: Record<string, FilterRead> = {};
  for (const [type, n] of [...counts].sort((a, b) => a[1] - b[1])) {
    const subject = `${SPEC.prefix}.${type}`;
    const unfilteredMs = await timedRead(js, SPEC.stream, n, { keep: (s) => s === subject, startSeq: 2 }, `${type} in the client`);
    const filteredMs = await timedRead(js, SPEC.stream, n, { filter: subject, startSeq: 2 }, `${type} on the server`);
    out[type] = { matching: n, total, unfiltered: rate(n, unfilteredMs), filtered: rate(n, filteredMs) };
  }
  return out;
}

/** B: `versions` outputs of `perVersion` events each, interleaved in one stream, against one version's own stream. */
async function outputs(nc: NatsConnection, js: JetStreamClient, corpus: string, perVersion: number, versions: number): Promise<FiltersResult["outputs"]> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "BENCH_OUT_SHARED", subjects: ["shared.>"] });
  await jsm.streams.add({ name: "BENCH_OUT_OWN", subjects: ["own.>"] });
  const take = [...readCorpus(corpus)].slice(0, perVersion);
  const interleaved = function* () {
    for (const e of take) for (let v = 1; v <= versions; v++) yield { type: `v${v}.${e.type}`, id: `${v}:${e.id}`, json: e.json };
  };
  await rawPublish(nc, "shared", interleaved());
  await rawPublish(nc, "own", take.map((e) => ({ ...e, type: `v2.${e.type}` })));
  const ownMs = await timedRead(js, "BENCH_OUT_OWN", perVersion, {}, "own output stream");
  const sharedMs = await timedRead(js, "BENCH_OUT_SHARED", perVersion, { filter: "shared.v2.>" }, "shared output stream, filtered");
  return { perVersion, versions, ownStream: rate(perVersion, ownMs), sharedFiltered: rate(perVersion, sharedMs) };
}

/** Both measurements on one fresh server. */
export async function measureFilters(corpus: string, events: number, perVersion = 250_000): Promise<FiltersResult> {
  return withScope(async (scope) => {
    const server = await startServer(scope);
    const nc = await connect(scope, server.url);
    await fill(nc, corpus, events, "fill filters");
    const js = jetstream(nc);
    return { server: nc.info?.version ?? "?", byType: await byType(js, corpus, events - 1), outputs: await outputs(nc, js, corpus, Math.min(perVersion, events), 4) };
  });
}
