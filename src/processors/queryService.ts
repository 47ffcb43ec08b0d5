import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { Service, ServiceMsg } from "@nats-io/services";
import { KappaError, messageOf } from "../errors.js";
import {
  DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS, QUERY_QUEUE, QUERY_SERVICE, QueryPool, querySubject, queryView, snapshotSubject, targetVersion,
  type DataDir, type ProcessorRecord, type RemoteAnswer, type RemoteError, type RemoteQueryRequest,
} from "../views/index.js";
import type { VersionRunner } from "./runner.js";
import type { SnapshotStore } from "./snapshots.js";

/** What the query service needs from its worker. */
export interface QueryServiceDeps {
  nc: NatsConnection;
  stream: string;
  worker: string;
  dataDir: DataDir;
  records: (name: string) => ProcessorRecord | undefined;
  runners: Map<string, VersionRunner>;
  /** Query processes of this worker (default 2). */
  processes?: number;
  /** Where `kappa snapshot` requests store their copies, and how many per version to keep. */
  snapshots?: { store: SnapshotStore; keep: number };
}

/** The longest a remote query may run, as over HTTP. */
const MAX_TIMEOUT_MS = 60_000;

const within = (v: unknown, max: number): number | undefined => (typeof v === "number" && Number.isInteger(v) && v >= 1 ? Math.min(v, max) : undefined);

/** Only the fields a query takes, each within the worker's ceilings: whoever can publish on NATS must not lift the caps (or move the deadline with arrivedAt). */
export function capped(req: RemoteQueryRequest): RemoteQueryRequest {
  const limit = within(req.limit, DEFAULT_MAX_ROWS);
  return {
    sql: String(req.sql),
    ...(req.params && typeof req.params === "object" ? { params: req.params } : {}),
    ...(req.version !== undefined ? { version: req.version } : {}),
    ...(typeof req.minSeq === "number" ? { minSeq: req.minSeq } : {}),
    timeoutMs: within(req.timeoutMs, MAX_TIMEOUT_MS) ?? 5000,
    ...(limit !== undefined ? { limit } : {}),
    maxRows: within(req.maxRows, DEFAULT_MAX_ROWS) ?? DEFAULT_MAX_ROWS,
    maxBytes: within(req.maxBytes, DEFAULT_MAX_BYTES) ?? DEFAULT_MAX_BYTES,
  };
}

/**
 * Answers queries on the views this worker holds, over NATS request/reply: one endpoint per processor
 * (`kappa.<stream>.query.<processor>`) in the queue group of every replica, registered as a NATS service
 * (`kappa-query`, discoverable with `$SRV.INFO`). A replica that does not hold the version, or is further
 * behind than the request's max staleness, says so and the client asks another one.
 */
export class QueryService {
  readonly #endpoints = new Set<string>();
  readonly #pool: QueryPool;
  #jsm: JetStreamManager | undefined;

  private constructor(private readonly deps: QueryServiceDeps, private readonly service: Service) {
    this.#pool = new QueryPool({ size: deps.processes ?? 2 });
  }

  /** Registers the service (no endpoints yet: they come with the processors this worker holds). */
  static async start(deps: QueryServiceDeps): Promise<QueryService> {
    let Svcm;
    try {
      ({ Svcm } = await import("@nats-io/services"));
    } catch (err) {
      throw new KappaError("SERVICES_MISSING", `cannot load @nats-io/services: ${messageOf(err)}`, { hint: "run `npm install` in the Kappa checkout" });
    }
    // The services package types its connection with its own copy of nats-core; the object is the same.
    const svc = await new Svcm(deps.nc as never).add({
      name: QUERY_SERVICE,
      version: "1.0.0",
      description: "Kappa view queries; one endpoint per processor",
      queue: QUERY_QUEUE,
      metadata: { worker: deps.worker, stream: deps.stream },
    });
    return new QueryService(deps, svc);
  }

  /** Starts answering queries on a processor (once; called when this worker starts holding it). */
  serve(processor: string): void {
    if (this.#endpoints.has(processor)) return;
    this.#endpoints.add(processor);
    this.service.addEndpoint(processor, {
      subject: querySubject(this.deps.stream, processor),
      metadata: { processor },
      handler: (err, msg) => {
        if (!err) void this.#answer(processor, msg);
      },
    });
    if (this.deps.snapshots) {
      this.service.addEndpoint(`snapshot_${processor}`, {
        subject: snapshotSubject(this.deps.stream, processor),
        metadata: { processor },
        handler: (err, msg) => {
          if (!err) void this.#reply(msg, () => this.#snapshot(processor, msg));
        },
      });
    }
  }

  /** `kappa snapshot`: any replica holding the version copies its file consistently into the object store. */
  async #snapshot(processor: string, msg: ServiceMsg): Promise<unknown> {
    const req = msg.json<{ version?: number }>();
    const rec = this.deps.records(processor);
    if (!rec) throw new KappaError("NOT_HELD", `${this.deps.worker} does not hold ${processor}`);
    const version = targetVersion(rec, req.version);
    if (!this.deps.runners.has(`${processor}/${version}`)) throw new KappaError("NOT_HELD", `${this.deps.worker} does not run ${processor} v${version}`);
    const s = await this.deps.snapshots!.store.take(this.deps.dataDir.viewFile(processor, version), processor, version, this.deps.snapshots!.keep);
    return { ...s, worker: this.deps.worker };
  }

  async #reply(msg: ServiceMsg, work: () => Promise<unknown>): Promise<void> {
    try {
      msg.respond(JSON.stringify(await work()));
    } catch (err) {
      const e = err as { code?: string; hint?: string };
      const body: RemoteError = { code: e.code ?? "REMOTE_ERROR", message: messageOf(err), ...(e.hint ? { hint: e.hint } : {}), worker: this.deps.worker };
      msg.respondError(500, body.message, JSON.stringify(body));
    }
  }

  async #answer(processor: string, msg: ServiceMsg): Promise<void> {
    const worker = this.deps.worker;
    try {
      const req = msg.json<RemoteQueryRequest>();
      const rec = this.deps.records(processor);
      if (!rec) throw new KappaError("NOT_HELD", `${worker} does not hold ${processor}`);
      const version = targetVersion(rec, req.version);
      const runner = this.deps.runners.get(`${processor}/${version}`);
      if (!runner) throw new KappaError("NOT_HELD", `${worker} does not run ${processor} v${version}`);
      if (req.maxStaleness !== undefined) {
        // Behind the log's head as the stream reports it now, not as the last batch said.
        this.#jsm ??= await jetstreamManager(this.deps.nc);
        const head = (await this.#jsm.streams.info(runner.inputStream)).state.last_seq;
        const lag = Math.max(0, Math.min(head, runner.record.untilSeq ?? head) - runner.checkpoint);
        if (lag > req.maxStaleness) throw new KappaError("STALE", `${worker} is ${lag} events behind on ${processor} v${version} (more than --max-staleness ${req.maxStaleness})`);
      }
      const a = await queryView(this.deps.dataDir, async () => rec, this.#pool, { ...capped(req), processor, version });
      msg.respond(JSON.stringify({ ...a, worker } satisfies RemoteAnswer));
    } catch (err) {
      const e = err as { code?: string; hint?: string };
      const body: RemoteError = { code: e.code ?? "REMOTE_ERROR", message: messageOf(err), ...(e.hint ? { hint: e.hint } : {}), worker };
      msg.respondError(500, body.message, JSON.stringify(body));
    }
  }

  /** Stops answering (requests go to other replicas) and closes the query processes. */
  async close(): Promise<void> {
    await this.service.stop().catch(() => {});
    await this.#pool.close();
  }
}
