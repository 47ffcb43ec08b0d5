import type { FastifyInstance } from "fastify";
import { Counter, Gauge, Registry, type Metric } from "prom-client";
import type { VersionState } from "../../views/index.js";
import type { ServerDeps } from "./deps.js";
import { METRICS } from "./schemas.js";

const STATES: VersionState[] = ["building", "caught-up", "live", "retired", "failed"];
const LABELS = ["processor", "version"] as const;

type Labels = { processor: string; version: string };
type BatchMs = { le: number[]; counts: number[]; sum: number; count: number };

/**
 * The batch apply histogram comes ready-made from the worker's stats (cumulative counts per bound),
 * which prom-client's Histogram cannot take, so this exposes it through the registry's metric interface.
 */
class StatsHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  #series: { labels: Labels; h: BatchMs }[] = [];
  constructor(readonly name: string, readonly help: string) {}

  set(series: { labels: Labels; h: BatchMs }[]): void {
    this.#series = series;
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: { metricName: string; labels: Record<string, string | number>; value: number }[] }> {
    const values = [];
    for (const { labels, h } of this.#series) {
      h.le.forEach((le, i) => values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: le / 1000 }, value: h.counts[i] ?? 0 }));
      values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: "+Inf" }, value: h.count });
      values.push({ metricName: `${this.name}_sum`, labels, value: h.sum / 1000 });
      values.push({ metricName: `${this.name}_count`, labels, value: h.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#series = [];
  }
}

/** `GET /metrics`: per processor version its checkpoint, log head, lag, events applied, batch apply durations, state and live flag; Prometheus text format. */
export function registerMetrics(app: FastifyInstance, deps: ServerDeps): void {
  const registry = new Registry();
  const gauge = (name: string, help: string, labelNames: readonly string[] = LABELS) => new Gauge({ name, help, labelNames, registers: [registry] });
  const natsUp = gauge("kappa_nats_up", "1 when the catalog in NATS is reachable, 0 when views are served from the local copy", []);
  const logHead = gauge("kappa_log_head_sequence", "last sequence in the event stream", []);
  const sse = gauge("kappa_http_event_streams", "open Server-Sent Events streams (change streams and status pages)", []);
  const sseBuffered = gauge("kappa_http_event_stream_buffered_bytes", "bytes in the event streams' response buffers, over every stream (each holds at most one 64 KiB piece beyond its high-water mark)", []);
  const ssePeak = gauge("kappa_http_event_stream_buffered_bytes_peak", "the most bytes one event stream's response buffer has held since the server started (events go out in 64 KiB pieces)", []);
  const sseQueued = gauge("kappa_http_event_stream_queued_bytes", "bytes of events waiting to be handed to the event streams' sockets, over every stream", []);
  const queryBusy = gauge("kappa_query_processes_busy", "query processes running a query now", []);
  const queryQueued = gauge("kappa_query_queue_length", "queries waiting for a free query process", []);
  const queryKilled = new Counter({ name: "kappa_query_killed_total", help: "query processes killed at a query's timeout since the server started", registers: [registry] });
  const checkpoint = gauge("kappa_view_checkpoint_sequence", "last stream sequence applied to the view version");
  const head = gauge("kappa_view_log_head_sequence", "last sequence of the stream the view version reads");
  const lag = gauge("kappa_view_lag_events", "matching events the view version has not applied yet");
  const eps = gauge("kappa_view_events_per_second", "events applied per second, smoothed (as the worker reports it)");
  const applied = new Counter({ name: "kappa_view_events_applied_total", help: "events the worker applied to the view version since the worker started (resets when it restarts)", labelNames: LABELS, registers: [registry] });
  const state = gauge("kappa_view_state", "1 for the state the view version is in, 0 for the others", [...LABELS, "state"]);
  const live = gauge("kappa_view_live", "1 for the version queries read, 0 for the others");
  const deadLetters = gauge("kappa_view_dead_letters", "events the version skipped into its dead-letter table");
  const wal = gauge("kappa_view_wal_bytes", "size of the view file's write-ahead log");
  const batches = new StatsHistogram("kappa_view_batch_apply_duration_seconds", "time to apply one batch of events and commit it with the checkpoint");
  registry.registerMetric(batches as unknown as Metric);
  const appended = new Counter({ name: "kappa_http_append_events_total", help: "events taken by POST /events since the server started: stored, or duplicate (already in the log)", labelNames: ["result"], registers: [registry] });
  const appendRefused = new Counter({ name: "kappa_http_append_refused_total", help: "POST /events requests refused, by error code (nothing of them stored)", labelNames: ["code"], registers: [registry] });
  const appendInFlight = gauge("kappa_http_append_inflight_events", "events of POST /events being published now", []);

  app.get("/metrics", { schema: METRICS }, async (_req, reply) => {
    const s = deps.snapshot();
    for (const m of [checkpoint, head, lag, eps, state, live, deadLetters, wal, applied]) m.reset();
    natsUp.set(s.nats.reachable ? 1 : 0);
    if (s.logHead !== null) logHead.set(s.logHead);
    else logHead.reset();
    sse.set(deps.hub.size);
    const pending = deps.hub.pending();
    sseBuffered.set(pending.buffered);
    sseQueued.set(pending.queued);
    ssePeak.set(pending.peakBuffered);
    const pool = deps.pool.stats();
    queryBusy.set(pool.busy);
    queryQueued.set(pool.queued);
    queryKilled.reset();
    queryKilled.inc(pool.killed);
    const series: { labels: Labels; h: BatchMs }[] = [];
    for (const p of s.processors) {
      for (const v of p.versions) {
        const labels = { processor: p.name, version: String(v.version) };
        for (const st of STATES) state.set({ ...labels, state: st }, v.state === st ? 1 : 0);
        live.set(labels, v.live ? 1 : 0);
        if (v.state === "retired") continue;
        if (v.checkpoint !== null) checkpoint.set(labels, v.checkpoint);
        if (v.logHead !== null) head.set(labels, v.logHead);
        if (v.lag !== null) lag.set(labels, v.lag);
        if (v.eventsPerSec !== null) eps.set(labels, v.eventsPerSec);
        if (v.eventsApplied !== null) applied.inc(labels, v.eventsApplied);
        if (v.deadLetters !== undefined) deadLetters.set(labels, v.deadLetters);
        if (v.walBytes !== undefined) wal.set(labels, v.walBytes);
        const h = deps.catalog.stats(p.name, v.version)?.batchMs;
        if (h) series.push({ labels, h });
      }
    }
    batches.set(series);
    const a = deps.appendStats;
    if (a) {
      appended.reset();
      appended.inc({ result: "stored" }, a.stored);
      appended.inc({ result: "duplicate" }, a.duplicates);
      appendRefused.reset();
      for (const [code, n] of a.refused) appendRefused.inc({ code }, n);
      appendInFlight.set(a.gate?.inFlight.events ?? 0);
    }
    reply.header("content-type", registry.contentType);
    return registry.metrics();
  });
}
