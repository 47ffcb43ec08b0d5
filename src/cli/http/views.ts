import type { FastifyInstance } from "fastify";
import { NotFoundError } from "../../errors.js";
import { assertReadOnlySql, validateProcessorName, type QueryAnswer } from "../../views/index.js";
import { arrivedAt, type ServerDeps } from "./deps.js";
import { CONTROL_KEYS, queryBody, queryControls, queryStringParams } from "./params.js";
import { NAMED_QUERY, QUERY, VIEW, VIEWS } from "./schemas.js";
import { processorView } from "./snapshot.js";

/** Single words that are whole SQL statements: refused as SQL, never looked up as named queries. */
const STATEMENT_WORDS = /^\s*(vacuum|begin|commit|end|rollback|analyze|reindex|release|savepoint|detach|pragma)\s*;?\s*$/i;

/** The shape of a query answer over HTTP. */
function answer(a: QueryAnswer & { worker?: string }): Record<string, unknown> {
  return { processor: a.processor, version: a.version, seq: a.seq, ...(a.named ? { named: a.named } : {}), columns: a.columns, rows: a.rows, truncated: a.truncated, ...(a.worker ? { worker: a.worker } : {}) };
}

/** `GET /views`, `GET /views/:processor`, `POST /views/:processor/query` and `GET /views/:processor/queries/:name`. */
export function registerViews(app: FastifyInstance, deps: ServerDeps): void {
  app.get("/views", { schema: VIEWS }, async () => {
    const s = deps.snapshot();
    return {
      nats: s.nats.reachable ? "ok" : "unreachable",
      logHead: s.logHead,
      processors: s.processors.map((p) => {
        const live = p.versions.find((v) => v.live);
        return {
          name: p.name,
          live: p.live,
          seq: live?.checkpoint ?? null,
          lag: live?.lag ?? null,
          eventsPerSec: live?.eventsPerSec ?? null,
          versions: p.versions.map((v) => ({ version: v.version, state: v.state })),
          queries: Object.keys(p.queries),
        };
      }),
    };
  });

  app.get<{ Params: { processor: string } }>("/views/:processor", { schema: VIEW }, async (req) => {
    const name = validateProcessorName(req.params.processor);
    const rec = await deps.catalog.records(name);
    if (!rec) throw new NotFoundError(`processor ${name} is not deployed`, { hint: "`GET /views` lists what exists; deploy with `kappa deploy <module>`" });
    // From the same snapshot as the page and /metrics (rates, writers), when the live catalog has it.
    return deps.snapshot().processors.find((p) => p.name === name) ?? processorView(rec, deps.catalog, deps.checkpoints, deps.ctx.dataDir);
  });

  app.post<{ Params: { processor: string } }>("/views/:processor/query", { schema: QUERY }, async (req) => {
    const b = queryBody(req.body, deps.limits);
    if (STATEMENT_WORDS.test(b.sql)) assertReadOnlySql(b.sql);
    return answer(await deps.query({ processor: req.params.processor, ...b, arrivedAt: arrivedAt(req) }));
  });

  app.get<{ Params: { processor: string; name: string }; Querystring: Record<string, unknown> }>("/views/:processor/queries/:name", { schema: NAMED_QUERY }, async (req) => {
    const name = req.params.name;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new NotFoundError(`"${name}" is not the name of a named query`, { hint: `see \`GET /views/${req.params.processor}\` for its queries` });
    const controls = queryControls(req.query, deps.limits);
    const params = queryStringParams(req.query, CONTROL_KEYS);
    return answer(await deps.query({ processor: req.params.processor, sql: name, params, ...controls, arrivedAt: arrivedAt(req) }));
  });
}
