import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import { ASSETS as ASSETS_SCHEMA } from "./schemas.js";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const uplotDist = dirname(require.resolve("uplot/dist/uPlot.iife.min.js"));

/** The files the status page loads, all served by `kappa serve` itself: no CDN, so the page works offline. */
const ASSETS: Record<string, { path: string; type: string }> = {
  "uPlot.iife.min.js": { path: join(uplotDist, "uPlot.iife.min.js"), type: "text/javascript; charset=utf-8" },
  "uPlot.min.css": { path: join(uplotDist, "uPlot.min.css"), type: "text/css; charset=utf-8" },
  "status.js": { path: join(here, "page/status.js"), type: "text/javascript; charset=utf-8" },
  "status.css": { path: join(here, "page/status.css"), type: "text/css; charset=utf-8" },
};

const cache = new Map<string, string>();

/** The text of a page file, read once. */
export function pageFile(name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(name === "status.html" ? join(here, "page/status.html") : ASSETS[name]!.path, "utf8");
    cache.set(name, text);
  }
  return text;
}

/** `GET /assets/:name`: the status page's script, styles and the uPlot charting library. */
export function registerAssets(app: FastifyInstance): void {
  app.get<{ Params: { name: string } }>("/assets/:name", { schema: ASSETS_SCHEMA }, async (req, reply) => {
    const asset = Object.hasOwn(ASSETS, req.params.name) ? ASSETS[req.params.name] : undefined;
    if (!asset) return reply.callNotFound();
    reply.header("content-type", asset.type);
    reply.header("cache-control", "no-cache");
    return pageFile(req.params.name);
  });
}
