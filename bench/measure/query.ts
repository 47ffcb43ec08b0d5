/**
 * 7. Queries: latency of a named query (`top_users`, n=10) through `kappa serve` (POST /views/:p/query),
 *    one request at a time: while v1 is live and idle, while v2, v3 and v4 rebuild (idle windows between), and while the live pointer swaps
 *    between v1 and v2 every 250 ms (promotions). Falls back to `queryView` in-process when `kappa serve`
 *    does not start, and says so in the result.
 */
import { deployModule, replayProcessor } from "../../src/processors/index.js";
import { Catalog, QueryPool, queryView, promote, type ProcessorRecord } from "../../src/views/index.js";
import { SPEC, startServer, connect, fill } from "../lib/env.js";
import { spawnKappa } from "../lib/kappaProc.js";
import { withScope, type Scope } from "../lib/scope.js";
import { latency, sleep, type Latency } from "../lib/stats.js";
import { PROCESSOR, startWorker } from "./replay.js";
import type { DataDir } from "../../src/views/index.js";

export interface QueryResult {
  events: number;
  via: string;
  /** ms */
  idle: Latency;
  duringRebuild: Latency;
  duringPromote: Latency & { promotions: number; answersByVersion: Record<string, number> };
}

type Ask = () => Promise<number>;

/** Rebuilds during which queries are timed. */
const REBUILDS = 3;

/** `kappa serve` as a subprocess; null when it does not come up. */
async function httpQuerier(scope: Scope, url: string, dataDir: DataDir): Promise<Ask | null> {
  const p = spawnKappa(scope, ["--nats", url, "--data-dir", dataDir.root, "--json", "serve", "--port", "0"]);
  let base: string;
  try {
    base = (JSON.parse(await p.waitForLine(/"ready":true/, 30_000)) as { http: string }).http;
  } catch (err) {
    process.stderr.write(`  kappa serve did not start (${(err as Error).message.split("\n")[0]}); querying in-process\n`);
    return null;
  }
  const body = JSON.stringify({ sql: "top_users", params: { n: 10 } });
  return async () => {
    const r = await fetch(`${base}/views/orders_by_user/query`, { method: "POST", body, headers: { "content-type": "application/json" } });
    const a = (await r.json()) as { version?: number; message?: string };
    if (!r.ok) throw new Error(`HTTP ${r.status}: ${a.message}`);
    return a.version!;
  };
}

function inProcessQuerier(scope: Scope, catalog: Catalog, dataDir: DataDir): Ask {
  const pool = new QueryPool(2);
  scope.defer("query pool", () => pool.close());
  const records = async (name: string): Promise<ProcessorRecord | null> => (await catalog.get(name))?.record ?? null;
  return async () => (await queryView(dataDir, records, pool, { processor: "orders_by_user", sql: "top_users", params: { n: 10 } })).version;
}

/** Asks one query after another until `until()` holds (or `ms` passed); returns latencies and answered versions. */
async function load(ask: Ask, until: () => boolean, ms: number): Promise<{ lat: number[]; versions: number[] }> {
  const lat: number[] = [];
  const versions: number[] = [];
  const end = performance.now() + ms;
  while (!until() && performance.now() < end) {
    const t = performance.now();
    versions.push(await ask());
    lat.push(performance.now() - t);
  }
  return { lat, versions };
}

async function waitState(catalog: Catalog, version: number, states: string[]): Promise<void> {
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(50)) {
    const r = await catalog.get("orders_by_user");
    if (r && states.includes(r.record.versions[String(version)]?.state ?? "")) return;
  }
  throw new Error(`orders_by_user v${version} did not reach ${states.join("/")}`);
}

export async function measureQueries(corpus: string, events: number): Promise<QueryResult> {
  return withScope(async (scope) => {
    const server = await startServer(scope);
    const nc = await connect(scope, server.url);
    await fill(nc, corpus, events);
    const { dataDir } = await startWorker(scope, server.url);
    const catalog = await Catalog.open(nc, SPEC.stream);
    await deployModule(nc, SPEC, PROCESSOR, { from: "start" });
    await waitState(catalog, 1, ["live"]);
    const http = await httpQuerier(scope, server.url, dataDir);
    const ask = http ?? inProcessQuerier(scope, catalog, dataDir);
    await load(ask, () => false, 1000); // warm-up
    // Three rebuilds, each after an idle window as long as the last rebuild took: on a shared machine other
    // work comes and goes, so idle and rebuild windows alternate and both meet it.
    const idle = { lat: [] as number[] };
    const rebuild = { lat: [] as number[] };
    let lastMs = 2000;
    for (let round = 0; round < REBUILDS; round++) {
      idle.lat.push(...(await load(ask, () => false, Math.max(1000, lastMs))).lat);
      process.stderr.write(`  rebuild ${round + 1}/${REBUILDS}: v${round + 2}\n`);
      const t0 = performance.now();
      const v = await replayProcessor(nc, SPEC, "orders_by_user", { from: "start" });
      let rebuilt = false;
      const watch = waitState(catalog, v.version.version, ["caught-up", "live"]).then(() => void (rebuilt = true));
      rebuild.lat.push(...(await load(ask, () => rebuilt, 120_000)).lat);
      await watch;
      lastMs = performance.now() - t0;
    }
    // idle and promotion windows alternate, so load from elsewhere on the machine hits both alike
    const during = { lat: [] as number[], versions: [] as number[] };
    let promotions = 0;
    for (let round = 0; round < 2; round++) {
      process.stderr.write(`  round ${round + 1}/2: 3 s idle, then 3 s with v1 ⇄ v2 promotions every 250 ms\n`);
      idle.lat.push(...(await load(ask, () => false, 3000)).lat);
      let promoting = true;
      const swaps = (async () => {
        while (promoting) {
          const live = (await catalog.get("orders_by_user"))?.record.live;
          await promote(catalog, "orders_by_user", live === 2 ? 1 : 2);
          promotions++;
          await sleep(250);
        }
      })();
      const d = await load(ask, () => false, 3000);
      promoting = false;
      await swaps;
      during.lat.push(...d.lat);
      during.versions.push(...d.versions);
    }
    const byVersion: Record<string, number> = {};
    for (const v of during.versions) byVersion[v] = (byVersion[v] ?? 0) + 1;
    return {
      events,
      via: http ? "HTTP: kappa serve, POST /views/orders_by_user/query (keep-alive fetch)" : "queryView in-process (kappa serve unavailable)",
      idle: latency(idle.lat),
      duringRebuild: latency(rebuild.lat),
      duringPromote: { ...latency(during.lat), promotions, answersByVersion: byVersion },
    };
  });
}
