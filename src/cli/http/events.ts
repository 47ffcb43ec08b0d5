import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { InputError, KappaError, messageOf } from "../../errors.js";
import { MAX_ATOMIC_BATCH, appendAtomic, enableAtomicBatches } from "../../log/index.js";
import { AppendGate, AppendStats, TooBusyError, type AppendLimits } from "./admission.js";
import { bearerHeaderOnly } from "./auth.js";
import type { ServerDeps } from "./deps.js";
import { HttpError } from "./errors.js";
import { checkEventBody } from "./eventBody.js";

/** What `kappa serve --allow-append` lets producers do, and how much at once. */
export interface AppendOptions {
  /** Writes are refused unless this is true. */
  allow: boolean;
  /** The bearer token writes need (required when `allow`). */
  token?: string;
  /** Take each event's id from this data field (dots for nested fields). */
  idField?: string;
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimit: number;
  /** Most events per request (default and ceiling 1000: one atomic batch). */
  maxEvents: number;
  /** How long to wait for NATS to acknowledge a request (default 5 s). */
  ackTimeoutMs: number;
  limits: AppendLimits;
  log?: (line: string) => void;
  /** Counts for /metrics. */
  stats?: AppendStats;
}

const ENVELOPE = {
  type: "object",
  required: ["type", "data"],
  properties: {
    type: { type: "string", description: "event type, e.g. order.placed (the subject is <prefix>.<type>)" },
    data: { type: "object", description: "the event's data" },
    id: { type: ["string", "number"], description: "idempotency key: an event with an id already stored is not stored again" },
  },
} as const;
const ERROR = {
  type: "object",
  properties: {
    error: { type: "string" },
    message: { type: "string" },
    hint: { type: "string" },
    invalid: { type: "integer", description: "how many items were refused" },
    errors: {
      type: "array",
      items: { type: "object", properties: { index: { type: "integer" }, line: { type: "integer" }, error: { type: "string" }, message: { type: "string" } } },
    },
  },
} as const;
const ANSWER = {
  type: "object",
  properties: {
    count: { type: "integer", description: "events in the request" },
    stored: { type: "integer", description: "events this request stored" },
    duplicates: { type: "integer", description: "events whose id was already stored (nothing stored for them)" },
    seqs: { type: "array", items: { type: "integer" }, description: "each event's stream sequence, in request order" },
    duplicateItems: { type: "array", items: { type: "integer" }, description: "indexes of the duplicates" },
  },
} as const;
const HEADERS = {
  type: "object",
  properties: {
    authorization: { type: "string", description: "Bearer <token> (required, also on loopback)" },
    "idempotency-key": { type: "string", description: "events without an id get `<key>:<index>`, so retrying the same request stores nothing twice" },
  },
} as const;

function schemaFor(typed: boolean): Record<string, unknown> {
  const item = typed ? { type: "object", description: "the event's data" } : ENVELOPE;
  return {
    summary: typed ? "Append events of one type" : "Append events",
    description:
      "Checks the whole request first (a bad item is named by its index and nothing is published), then stores it all-or-nothing in one atomic batch. Needs the bearer token, also on loopback. 429 and 503 carry Retry-After.",
    tags: ["events"],
    headers: HEADERS,
    ...(typed ? { params: { type: "object", properties: { type: { type: "string", description: "event type of every item" } } } } : {}),
    body: {
      content: {
        "application/json": { schema: { oneOf: [{ type: "array", items: item }, item] } },
        "application/x-ndjson": { schema: { type: "string", description: `one ${typed ? "data object" : "envelope"} per line` } },
      },
    },
    response: { 200: ANSWER, 400: ERROR, 401: ERROR, 403: ERROR, 413: ERROR, 429: ERROR, 503: ERROR },
  };
}

/** `POST /events` and `POST /events/:type`: events in over HTTP, when the server allows appends. */
export function registerEvents(app: FastifyInstance, deps: ServerDeps, opts: AppendOptions): void {
  // Checked here too, not only by startHttpServer: without a token the write routes would have no auth hook.
  if (opts.allow && !opts.token) throw new KappaError("TOKEN_REQUIRED", "writes over HTTP need a token, also on loopback", { hint: "pass --token <secret> with --allow-append" });
  const maxEvents = Math.min(opts.maxEvents, MAX_ATOMIC_BATCH);
  const gate = new AppendGate(opts.limits, maxEvents);
  const stats = opts.stats ?? new AppendStats();
  stats.gate = gate;
  let ready: Promise<void> | undefined;
  // Turns atomic batches on for the stream once per connection; a failure is retried on the next request.
  const atomicReady = () =>
    (ready ??= (async () => {
      const nc = deps.catalog.connection;
      if (!nc) return;
      const r = await enableAtomicBatches(nc, deps.ctx.spec);
      if (r === "enabled") opts.log?.(`stream ${deps.ctx.spec.stream}: atomic batches enabled for POST /events`);
    })().catch((err) => {
      ready = undefined;
      throw err;
    }));

  void app.register(async (scope) => {
    scope.addContentTypeParser(["application/x-ndjson", "application/ndjson", "application/jsonl"], { parseAs: "string" }, (_req, body, done) => done(null, body));
    const handler = async (req: FastifyRequest<{ Params: { type?: string } }>, reply: FastifyReply) => {
      if (!opts.allow) {
        throw new HttpError(403, "APPEND_DISABLED", "this server does not take events", { hint: "start it with `kappa serve --allow-append --token <secret>` (or `kappa dev` with the same flags)" });
      }
      const key = req.headers["idempotency-key"];
      if (key !== undefined && (typeof key !== "string" || key.trim() === "" || key.length > 200)) {
        throw new HttpError(400, "BAD_IDEMPOTENCY_KEY", "Idempotency-Key must be one non-empty value of at most 200 characters", { hint: "send a fresh random key per request, the same one on its retries" });
      }
      // NDJSON arrives as text; a JSON body that is itself a string is neither an event nor a list of them.
      if (typeof req.body === "string" && !/ndjson|jsonl/i.test(req.headers["content-type"] ?? "")) {
        throw new HttpError(400, "BAD_EVENT", "the body is a JSON string, not an event or a list of events", { hint: 'send a JSON array, e.g. [{"type": "order.placed", "data": {...}}], or NDJSON with Content-Type: application/x-ndjson' });
      }
      const nc = deps.catalog.connection;
      const checked = checkEventBody(req.body, {
        ...(req.params.type !== undefined ? { type: req.params.type } : {}),
        ...(opts.idField ? { idField: opts.idField } : {}),
        ...(key !== undefined ? { idempotencyKey: key } : {}),
        maxBytes: nc?.info?.max_payload ?? 1024 * 1024,
        maxEvents,
      });
      if (!checked.ok) {
        const first = checked.errors[0]!;
        stats.refuse(first.error);
        return reply.code(400).send({
          error: first.error,
          message: `${checked.total} of the request's items ${checked.total === 1 ? "is" : "are"} invalid; first: ${first.message}`,
          hint: "fix the items named in `errors` (by index) and send the request again — nothing of it was published",
          invalid: checked.total,
          errors: checked.errors,
        });
      }
      if (!nc || !deps.catalog.health().reachable) {
        throw new HttpError(503, "NATS_UNAVAILABLE", `NATS is unreachable (${deps.catalog.health().error ?? "not connected"}); nothing was stored`, { hint: "retry after the Retry-After seconds with the same ids" });
      }
      const release = gate.admit(checked.events.length);
      try {
        await atomicReady();
        const r = await appendAtomic(nc, deps.ctx.spec, checked.events, { timeoutMs: opts.ackTimeoutMs });
        const duplicateItems = r.duplicate.flatMap((d, i) => (d ? [i] : []));
        stats.stored += r.stored;
        stats.duplicates += duplicateItems.length;
        return { count: r.seqs.length, stored: r.stored, duplicates: duplicateItems.length, seqs: r.seqs, duplicateItems };
      } catch (err) {
        // Someone turned atomic batches off after this server turned them on: turn them on again next time.
        if (err instanceof KappaError && err.code === "ATOMIC_DISABLED") ready = undefined;
        throw err instanceof HttpError ? err : unavailable(err);
      } finally {
        release();
      }
    };
    const routeOpts = {
      bodyLimit: opts.bodyLimit,
      // The body is checked by checkEventBody, which names each bad item by its index; the schemas document it.
      validatorCompiler: () => () => true,
      errorHandler: (err: FastifyError, _req: FastifyRequest, reply: FastifyReply) => {
        stats.refuse(err instanceof KappaError ? err.code : err.code === "FST_ERR_CTP_BODY_TOO_LARGE" ? "BODY_TOO_LARGE" : (err.code ?? "ERROR"));
        if (err instanceof TooBusyError) reply.header("retry-after", String(err.retryAfterSec));
        if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
          throw new HttpError(413, "BODY_TOO_LARGE", `the body is larger than this server's ${opts.bodyLimit} bytes per request`, { hint: "split the events into several requests, or raise --append-body-limit" });
        }
        throw err;
      },
      // Before the body is read: an unauthenticated client cannot make the server take in a large body.
      ...(opts.token ? { onRequest: bearerHeaderOnly(opts.token) } : {}),
    };
    scope.post<{ Params: { type?: string } }>("/events", { ...routeOpts, schema: schemaFor(false) }, handler);
    scope.post<{ Params: { type?: string } }>("/events/:type", { ...routeOpts, schema: schemaFor(true) }, handler);
  });
}

/**
 * Trouble while storing becomes 503 (with Retry-After from the server's error handler): also a JetStream
 * request that timed out while atomic batches were set up (NATS_ERROR) or an unreadable ack, which a 500
 * or a 400 (BAD_*) would tell the producer to drop instead of retry. Only the request's own fault (an
 * InputError) stays 400, and a lookup that stored (PROBE_STORED, a server bug) stays 500.
 */
function unavailable(err: unknown): unknown {
  if (err instanceof InputError || (err instanceof KappaError && err.code === "PROBE_STORED")) return err;
  const code = err instanceof KappaError ? err.code : "NATS_UNAVAILABLE";
  const hint = (err instanceof KappaError ? err.hint : undefined) ?? "retry with the same ids";
  return new HttpError(503, code, `storing the events failed: ${messageOf(err)}; the request is stored in whole or not at all`, { hint, cause: err });
}
