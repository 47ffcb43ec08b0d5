import { readFileSync } from "node:fs";
import swagger from "@fastify/swagger";
import type { FastifyInstance } from "fastify";
import { OPENAPI } from "./schemas.js";

/**
 * Collects every route's schema as routes are added (so it must be registered before them) and
 * serves the result at `GET /openapi.json`: the document is generated from the schemas that validate
 * the requests, never written by hand. Returns the list of routes (`GET /views/:processor`, …) as they are added.
 */
export async function registerOpenApi(app: FastifyInstance): Promise<string[]> {
  const routes: string[] = [];
  app.addHook("onRoute", (r) => {
    for (const m of [r.method].flat()) if (m !== "HEAD") routes.push(`${m} ${r.url}`);
  });
  const version = (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Kappa query server",
        version,
        description: "Queries, change streams, events in, metrics, health and the status page of `kappa serve`. Errors are JSON `{error, message, hint}`. See docs/http.md.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "the --token given to `kappa serve` (required when it has one)" } } },
    },
    // HEAD routes are fastify's automatic twins of the GET routes.
    hideUntagged: false,
    exposeHeadRoutes: false,
  });
  app.get("/openapi.json", { schema: OPENAPI }, async () => app.swagger());
  return routes;
}
