import { readFileSync } from "node:fs";
import Fastify from "fastify";
import type { NatsConnection } from "@nats-io/nats-core";
import { KappaError, messageOf } from "../../errors.js";
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS, QueryPool, queryView } from "../../views/index.js";
import type { CliContext } from "../context.js";
import { assertSafeBind, bearerAuth, isLoopback, loopbackHostCheck } from "./auth.js";
import { registerChanges } from "./changes.js";
import { registerEvents, type AppendOptions } from "./events.js";
import { AppendStats } from "./admission.js";
import { registerViewsQuery } from "./viewsQuery.js";
import { CheckpointReader } from "./checkpoints.js";
import { Semaphore, arrivals, type ServerDeps } from "./deps.js";
import { bodyOf, statusOf } from "./errors.js";
import { registerHealth } from "./health.js";
import { LiveCatalog, type NatsHealth } from "./liveCatalog.js";
import { registerMetrics } from "./metrics.js";
import { CheckpointRates } from "./rates.js";
import { registerOpenApi } from "./openapi.js";
import { VALIDATION, schemaError } from "./schemas.js";
import { snapshot } from "./snapshot.js";
import { WriterWatch } from "./writers.js";
import { SseHub } from "./sse.js";
import { registerStatus } from "./statusRoutes.js";
import { registerViews } from "./views.js";
import { RemoteReads } from "./remoteReads.js";

/** How the query server listens and what it allows. */
export interface HttpServerOptions {
  /** Address to bind (default 127.0.0.1); anything but loopback needs `token`. */
  host?: string;
  /** Port (default 7070; 0 picks a free one). */
  port?: number;
  /** When set, every request needs `Authorization: Bearer <token>`. */
  token?: string;
  /** A NATS connection to share (`kappa dev`), left open on close; otherwise the server connects through the context (reconnecting forever) and closes that connection on close. */
  nc?: NatsConnection;
  /** Largest request body in bytes (default 64 KiB). */
  bodyLimit?: number;
  /** Query processes running at once (default 2). */
  queryProcesses?: number;
  /** Queries that may wait for a free query process (default 64); beyond that: 503 QUERY_BUSY with Retry-After. */
  queryQueue?: number;
  /** Cap on one answer's bytes (default 16 MiB; requests may ask for less with maxBytes). */
  maxResultBytes?: number;
  /** SQLite memory cap of each query process in bytes (default 256 MiB). */
  queryMemoryBytes?: number;
  /** Open event streams at most (default 100); beyond that: 503 with Retry-After. */
  maxEventStreams?: number;
  /** Named-query re-runs for change streams in flight at once, over all streams (default 2). */
  maxFollowQueries?: number;
  /** Serve HTTPS with this certificate and key (PEM files); the token cookie is then `Secure`. */
  tls?: { cert: string; key: string };
  /** Ceiling and default for `timeoutMs` (defaults 60 s and 5 s). */
  maxTimeoutMs?: number;
  defaultTimeoutMs?: number;
  /** Cap on one answer's rows (default 100,000): more is RESULT_TOO_LARGE; `limit` may ask for fewer, cut. */
  maxResultRows?: number;
  /** Answer view queries over NATS from the workers holding them (`kappa serve --remote`), not from this data dir. */
  remote?: boolean;
  /** With `remote`: how stale an answer may be (events behind the log's head, or "any"); absent: the workers' default bound. */
  maxStaleness?: number | "any";
  /** Change streams read the live checkpoint this often (default 25 ms). */
  pollMs?: number;
  /** The status stream looks for changes this often (default 500 ms). */
  statusIntervalMs?: number;
  /** Heartbeat comments on event streams (default 15 s). */
  heartbeatMs?: number;
  /** `POST /events`: off unless `allow`; needs `token` even on loopback. */
  append?: Partial<Omit<AppendOptions, "token" | "log" | "limits">> & { limits?: Partial<AppendOptions["limits"]> };
  /** Where to report server errors (500s). */
  log?: (line: string) => void;
}

/** A running query server. */
export interface HttpServer {
  /** The base URL to reach it from this machine, e.g. http://127.0.0.1:7070. */
  url: string;
  host: string;
  port: number;
  /** Whether NATS answers right now, and where processor records come from. */
  health(): NatsHealth;
  /** Every route, as `METHOD /path` (HEAD twins left out). */
  routes(): string[];
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function urlFor(host: string, port: number, tls: boolean): string {
  const reach = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return `${tls ? "https" : "http"}://${reach.includes(":") ? `[${reach}]` : reach}:${port}`;
}

/** Reads the PEM files for HTTPS, with a clear error when one is missing or unreadable. */
function readTls(tls: { cert: string; key: string }): { cert: Buffer; key: Buffer } {
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new KappaError("TLS_FILE", `cannot read the TLS ${what} ${file}: ${messageOf(err)}`, { hint: "pass PEM files to --tls-cert and --tls-key (e.g. made with `openssl req -x509 -newkey rsa:2048 -nodes`)", cause: err });
    }
  };
  return { cert: read(tls.cert, "certificate"), key: read(tls.key, "key") };
}

/** Starts the HTTP query API, change streams, metrics, health and status page over one data dir and catalog. */
export async function startHttpServer(ctx: CliContext, opts: HttpServerOptions = {}): Promise<HttpServer> {
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? 7070;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new KappaError("BAD_PORT", `port ${port} is not a TCP port`, { hint: "use 1–65535, or 0 for a free one" });
  assertSafeBind(host, opts.token);
  if (opts.append?.allow && !opts.token) {
    throw new KappaError("TOKEN_REQUIRED", "--allow-append needs --token, also on loopback: any local process or web page could otherwise write to the log", {
      hint: "pass --token <secret> (e.g. `openssl rand -hex 24`); producers send `Authorization: Bearer <secret>`",
    });
  }

  const catalog = await LiveCatalog.start(ctx, opts.nc, opts.log);
  const checkpoints = new CheckpointReader();
  const https = opts.tls ? readTls(opts.tls) : undefined;
  const maxResultBytes = opts.maxResultBytes ?? DEFAULT_MAX_BYTES;
  const pool = new QueryPool({ size: opts.queryProcesses ?? 2, maxQueue: opts.queryQueue ?? 64, memoryBytes: opts.queryMemoryBytes ?? Math.max(256 << 20, maxResultBytes * 4), warm: true });
  const hub = new SseHub(opts.heartbeatMs ?? 15_000, opts.maxEventStreams ?? 100);
  const cleanups: (() => void)[] = [];
  const rates = new CheckpointRates();
  const writers = new WriterWatch(() => catalog.connection, ctx.spec.stream);
  cleanups.push(() => writers.stop());
  const remote = opts.remote ? new RemoteReads(async () => opts.nc ?? (await ctx.nats()), ctx.spec.stream, opts.maxStaleness) : undefined;
  const deps: ServerDeps = {
    ctx,
    catalog,
    checkpoints,
    pool,
    query: remote ? (q) => remote.query(q) : (q) => queryView(ctx.dataDir, catalog.records, pool, q),
    hub,
    limits: { maxRows: opts.maxResultRows ?? DEFAULT_MAX_ROWS, defaultTimeoutMs: opts.defaultTimeoutMs ?? 5000, maxTimeoutMs: opts.maxTimeoutMs ?? 60_000, maxBytes: maxResultBytes },
    streams: { max: hub.max, followQueries: new Semaphore(opts.maxFollowQueries ?? 2) },
    pollMs: opts.pollMs ?? 25,
    statusIntervalMs: opts.statusIntervalMs ?? 500,
    snapshot: () => snapshot(catalog, checkpoints, ctx.dataDir, rates, writers),
    onClose: (fn) => cleanups.push(fn),
    appendStats: new AppendStats(),
  };

  const app = Fastify({ bodyLimit: opts.bodyLimit ?? 64 * 1024, logger: false, forceCloseConnections: true, return503OnClosing: true, ajv: VALIDATION, schemaErrorFormatter: schemaError, ...(https ? { https } : {}) });
  // Timeouts count from here: time spent waiting for a query process is part of a request's budget.
  app.addHook("onRequest", async (req) => {
    arrivals.set(req.raw, Date.now());
  });
  // Only JSON bodies: SQL sent as text/plain gets a clear 415 instead of a confusing shape error.
  app.removeContentTypeParser("text/plain");
  if (isLoopback(host)) app.addHook("onRequest", loopbackHostCheck());
  if (opts.token) app.addHook("onRequest", bearerAuth(opts.token, { secure: https !== undefined }));
  app.setErrorHandler((err, req, reply) => {
    const status = statusOf(err);
    if (status >= 500 && status !== 503 && status !== 504) opts.log?.(`${req.method} ${req.url}: ${err instanceof Error && err.stack ? err.stack : messageOf(err)}`);
    if (status === 503) reply.header("retry-after", "1");
    void reply.code(status).send(bodyOf(err));
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({
      error: "NOT_FOUND",
      message: `no route ${req.method} ${req.url.split("?")[0]}`,
      hint: "routes: GET /, /events/status, /views, /views/:processor, /views/:processor/queries/:name, /views/:processor/changes, /metrics, /healthz; POST /views/:processor/query, /query, /events, /events/:type (see docs/http.md)",
    });
  });
  const routes = await registerOpenApi(app);
  registerViews(app, deps);
  registerViewsQuery(app, deps);
  registerEvents(app, deps, {
    allow: opts.append?.allow === true,
    ...(opts.token ? { token: opts.token } : {}),
    ...(opts.append?.idField ? { idField: opts.append.idField } : {}),
    bodyLimit: opts.append?.bodyLimit ?? 1024 * 1024,
    maxEvents: opts.append?.maxEvents ?? 1000,
    ackTimeoutMs: opts.append?.ackTimeoutMs ?? 5000,
    limits: { maxInFlight: 10_000, maxRequests: 32, ratePerSec: 0, ...opts.append?.limits },
    ...(opts.log ? { log: opts.log } : {}),
    ...(deps.appendStats ? { stats: deps.appendStats } : {}),
  });
  registerChanges(app, deps);
  registerMetrics(app, deps);
  registerHealth(app, deps);
  registerStatus(app, deps);

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      hub.closeAll();
      for (const fn of cleanups) fn();
      await app.close().catch(() => {});
      await pool.close();
      checkpoints.close();
      await catalog.close();
    })());

  try {
    await app.listen({ host, port });
  } catch (err) {
    await close();
    const code = (err as NodeJS.ErrnoException).code;
    throw new KappaError("HTTP_LISTEN_FAILED", `cannot listen on ${host}:${port}: ${code === "EADDRINUSE" ? "the port is in use" : messageOf(err)}`, {
      hint: code === "EADDRINUSE" ? "pick another --port (0 picks a free one), or stop what uses it" : "check --host and --port",
      cause: err,
    });
  }
  const address = app.server.address();
  const bound = typeof address === "object" && address ? address.port : port;
  return { url: urlFor(host, bound, https !== undefined), host, port: bound, health: () => catalog.health(), routes: () => [...routes], close, [Symbol.asyncDispose]: close };
}
