import type { NatsConnection } from "@nats-io/nats-core";
import type { Service, ServiceMsg } from "@nats-io/services";
import { KappaError, messageOf } from "../errors.js";
import {
  DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS, QUERY_QUEUE, QUERY_SERVICE, QueryPool, faultOf, querySubject, queryView, snapshotSubject, targetVersion,
  type DataDir, type ProcessorRecord, type RemoteAnswer, type RemoteError, type RemoteFault, type RemoteQueryRequest, type WorkerRegistry,
} from "../views/index.js";
import { CatalogViewError, QueryAdmission, RefusedError } from "./queryAdmission.js";
import { PeerCheckpoints } from "./peerCheckpoints.js";
import type { VersionRunner } from "./runner.js";
import type { SnapshotTaker } from "./snapshotTaker.js";

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
  /** The current catalog record (a KV read), to tell an error of this replica's catalog copy from the query's own. */
  freshRecord?: (name: string) => Promise<ProcessorRecord | undefined>;
  /** The workers' heartbeats: the default staleness bound compares with what the other replicas reported. */
  registry?: WorkerRegistry;
  log?: (line: string) => void;
  /** Takes the snapshots `kappa snapshot` asks for (one at a time, rate-limited). */
  snapshots?: SnapshotTaker;
  /** Whether this worker is the version's writer (key `name/version`): only the writer takes snapshots on request. */
  isWriter?: (key: string) => boolean;
}

/** True when the request resolves to a version (and named query) on this record. */
function resolves(rec: ProcessorRecord, req: RemoteQueryRequest): boolean {
  try {
    const v = targetVersion(rec, req.version);
    const name = String(req.sql).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return true;
    return rec.versions[String(v)]?.queries?.[name] !== undefined;
  } catch {
    return false;
  }
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
  readonly #peers: PeerCheckpoints | undefined;
  readonly #admission: QueryAdmission;

  private constructor(private readonly deps: QueryServiceDeps, private readonly service: Service) {
    this.#pool = new QueryPool({ size: deps.processes ?? 2 });
    this.#peers = deps.registry ? new PeerCheckpoints(deps.registry, deps.log ?? (() => {})) : undefined;
    this.#admission = new QueryAdmission({ nc: deps.nc, worker: deps.worker, records: deps.records, runners: deps.runners, ...(this.#peers ? { peers: this.#peers } : {}) });
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

  /**
   * `kappa snapshot`: the version's writer copies its file consistently into the object store. One worker per
   * version taking them (as the schedule does) makes "one at a time, at most one per interval" hold for the
   * cluster, not only per worker; the other replicas refuse and the request goes on to the writer.
   */
  async #snapshot(processor: string, msg: ServiceMsg): Promise<unknown> {
    const { worker } = this.deps;
    const req = msg.json<{ version?: number }>();
    const rec = this.deps.records(processor);
    if (!rec) throw new RefusedError("NOT_HELD", `${worker} does not hold ${processor}`, "replica");
    const version = targetVersion(rec, req.version);
    const runner = this.deps.runners.get(`${processor}/${version}`);
    if (!runner) throw new RefusedError("NOT_HELD", `${worker} does not run ${processor} v${version}`, "replica");
    if (this.deps.isWriter && !this.deps.isWriter(`${processor}/${version}`)) throw new RefusedError("NOT_WRITER", `${worker} is not the writer of ${processor} v${version}, which takes its snapshots`, "replica");
    const s = await this.deps.snapshots!.take(processor, version, runner.checkpoint, "request");
    return { ...s, worker: s.takenBy ?? worker };
  }

  async #reply(msg: ServiceMsg, work: () => Promise<unknown>): Promise<void> {
    try {
      msg.respond(JSON.stringify(await work()));
    } catch (err) {
      const code = (err as { code?: string }).code ?? "";
      // Not the request's fault unless it names what does not exist; a copy that failed here may work elsewhere.
      this.#respondError(msg, err, err instanceof RefusedError ? err.fault : ["NOT_FOUND", "NO_LIVE_VERSION", "BAD_INPUT"].includes(code) ? "query" : "replica");
    }
  }

  #respondError(msg: ServiceMsg, err: unknown, fault: RemoteFault): void {
    const e = err as { code?: string; hint?: string };
    const body: RemoteError = { code: e.code ?? "REMOTE_ERROR", message: messageOf(err), ...(e.hint ? { hint: e.hint } : {}), worker: this.deps.worker, fault };
    msg.respondError(500, body.message, JSON.stringify(body));
  }

  async #answer(processor: string, msg: ServiceMsg): Promise<void> {
    let req: RemoteQueryRequest | undefined;
    try {
      req = msg.json<RemoteQueryRequest>();
      const q = capped(req);
      const admitted = await this.#admission.admit(processor, req, Date.now() + q.timeoutMs!);
      const a = await queryView(this.deps.dataDir, async () => admitted.rec, this.#pool, { ...q, processor, version: admitted.version });
      msg.respond(JSON.stringify({ ...a, worker: this.deps.worker } satisfies RemoteAnswer));
    } catch (err) {
      const fault = await this.#faultOf(err, processor, req);
      this.#respondError(msg, err instanceof CatalogViewError ? err.inner : err, fault);
    }
  }

  /** Whose fault an error is; for one that depends on this replica's catalog copy, the catalog itself decides. */
  async #faultOf(err: unknown, processor: string, req: RemoteQueryRequest | undefined): Promise<RemoteFault> {
    if (err instanceof RefusedError) return err.fault;
    if (!req) return "query"; // not a request at all
    const code = (err as { code?: string }).code;
    if (!(err instanceof CatalogViewError) && code !== "NOT_FOUND" && code !== "NO_LIVE_VERSION") return faultOf(err);
    // The same request against the catalog as it is now: if that resolves, only this replica's copy is behind.
    const fresh = await this.deps.freshRecord?.(processor).catch(() => undefined);
    return fresh && resolves(fresh, req) ? "replica" : "query";
  }

  /** Stops answering (requests go to other replicas) and closes the query processes. */
  async close(): Promise<void> {
    this.#peers?.stop();
    await this.service.stop().catch(() => {});
    await this.#pool.close();
  }
}
