import type { FastifyInstance } from "fastify";
import type { ServerDeps } from "./deps.js";
import { HEALTH } from "./schemas.js";

/**
 * `GET /healthz`. 200 `ok` when NATS answers and every live view file reads; 200 `degraded` when NATS is
 * down (queries still answer from SQLite with the last known catalog) or a live view file cannot be read;
 * 503 `unavailable` only when NATS is down and there is no catalog to answer from at all.
 */
export function registerHealth(app: FastifyInstance, deps: ServerDeps): void {
  const started = Date.now();
  app.get("/healthz", { schema: HEALTH }, async (_req, reply) => {
    const nats = deps.catalog.health();
    const views = deps.catalog.list().filter((r) => r.live !== null).map((r) => {
      const cp = deps.checkpoints.read(deps.ctx.dataDir, r.name, r.live!);
      return { processor: r.name, live: r.live!, seq: cp, readable: cp !== null };
    });
    const status = !nats.reachable && nats.source === "none" ? "unavailable" : !nats.reachable || views.some((v) => !v.readable) ? "degraded" : "ok";
    reply.code(status === "unavailable" ? 503 : 200);
    return { status, nats, views, uptimeSeconds: Math.round((Date.now() - started) / 1000) };
  });
}
