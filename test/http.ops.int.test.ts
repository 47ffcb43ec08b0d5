import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { request } from "node:http";
import { resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { cliContext, kappa } from "./support/cli.js";
import { deployModule } from "../src/processors/index.js";
import { startHttpServer, type HttpServer } from "../src/cli/http/index.js";
import type { NatsServer } from "../src/log/index.js";

const V1 = resolve("examples/orders/orders_by_user.ts");
const V2 = resolve("examples/orders/orders_by_user_v2.ts");
const TOKEN = "test-token-7f3a9c1e5b";

let env: TestEnv;
/** orders_by_user applies only order.placed; the other events move its checkpoint without being applied. */
let placed = 0;

beforeAll(async () => {
  env = await TestEnv.start();
  placed = (await env.appendOrders(500, 31)).filter((e) => e.type === "order.placed").length;
  await env.startWorker();
  await deployModule(env.nc, env.spec, V1);
  await env.waitForRecord("orders_by_user", (r) => r.live === 1);
});

afterAll(async () => {
  await env?.close();
});

/** GET with an explicit Host header (fetch does not let a caller pick it). */
function getWithHost(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = request(url, { headers: { host } }, (r) => {
      let body = "";
      r.on("data", (b: Buffer) => (body += b.toString()));
      r.on("end", () => res({ status: r.statusCode ?? 0, body }));
    });
    req.on("error", rej);
    req.end();
  });
}

describe("binding and tokens", () => {
  it("on loopback, refuses requests that name another host (DNS rebinding)", async () => {
    await using server = await startHttpServer(cliContext(env), { port: 0 });
    const evil = await getWithHost(`${server.url}/views`, `evil.example:${server.port}`);
    expect(evil.status).toBe(403);
    expect(JSON.parse(evil.body)).toMatchObject({ error: "FORBIDDEN_HOST" });
    for (const host of [`127.0.0.1:${server.port}`, `localhost:${server.port}`, "localhost"]) expect((await getWithHost(`${server.url}/views`, host)).status, host).toBe(200);
  });

  it("refuses to bind a non-loopback address without a token, in the API and the CLI", async () => {
    await expect(startHttpServer(cliContext(env), { host: "0.0.0.0", port: 0 })).rejects.toMatchObject({ code: "TOKEN_REQUIRED", hint: expect.stringMatching(/--token/) });
    const r = kappa(["--data-dir", env.dataDir.root, "--nats", env.server.url, "serve", "--host", "0.0.0.0", "--port", "0"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/refusing to serve on 0\.0\.0\.0 without a token/);
    expect(r.stderr).toMatch(/hint: pass --token/);
  });

  it("on 0.0.0.0 with a token, answers 401 JSON without the right bearer token and 200 with it", async () => {
    await using server = await startHttpServer(cliContext(env), { host: "0.0.0.0", port: 0, token: TOKEN });
    const base = `http://127.0.0.1:${server.port}`;
    for (const path of ["/views", "/views/orders_by_user", "/metrics", "/healthz", "/", "/views/orders_by_user/changes", "/nowhere"]) {
      const none = await fetch(base + path);
      expect(none.status, path).toBe(401);
      expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(await none.json()).toMatchObject({ error: "UNAUTHORIZED", hint: expect.stringMatching(/Authorization: Bearer/) });
      const wrong = await fetch(base + path, { headers: { authorization: "Bearer nope" } });
      expect(wrong.status, path).toBe(401);
    }
    const post = (headers: Record<string, string>) => fetch(`${base}/views/orders_by_user/query`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ sql: "SELECT count(*) AS n FROM totals" }) });
    expect((await post({})).status).toBe(401);
    const ok = await post({ authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { rows: { n: number }[] }).rows[0]!.n).toBeGreaterThan(0);
    for (const path of ["/views", "/metrics", "/healthz"]) expect((await fetch(base + path, { headers: { authorization: `Bearer ${TOKEN}` } })).status, path).toBe(200);
  });

  it("lets a browser in with /?token= once, through an HttpOnly cookie", async () => {
    await using server = await startHttpServer(cliContext(env), { host: "0.0.0.0", port: 0, token: TOKEN });
    const base = `http://127.0.0.1:${server.port}`;
    expect((await fetch(`${base}/?token=wrong`)).status).toBe(401);
    expect((await fetch(`${base}/views?token=${TOKEN}`)).status).toBe(401);
    const page = await fetch(`${base}/?token=${TOKEN}`);
    expect(page.status).toBe(200);
    const cookie = page.headers.get("set-cookie")!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect((await fetch(`${base}/views`, { headers: { cookie: cookie.split(";")[0]! } })).status).toBe(200);
  });
});

/** Checks Prometheus text exposition line by line; returns samples by series. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Set<string>();
  const name = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  const label = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
  const sample = new RegExp(`^(${name})(\\{(?:${label})(?:,${label})*\\})? (-?(?:[0-9.]+(?:e[+-]?[0-9]+)?|\\+Inf|-Inf|NaN))(?: -?[0-9]+)?$`);
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) (.+)$/.exec(line);
      expect(m, line).not.toBeNull();
      if (m![1] === "TYPE") {
        expect(["counter", "gauge", "histogram", "summary", "untyped"]).toContain(m![3]);
        typed.add(m![2]!);
      }
      continue;
    }
    const m = sample.exec(line);
    expect(m, `not exposition format: ${line}`).not.toBeNull();
    const base = m![1]!.replace(/_(bucket|sum|count)$/, "");
    expect(typed.has(m![1]!) || typed.has(base), `no TYPE before ${line}`).toBe(true);
    samples.set(m![1]! + (m![2] ?? ""), Number(m![3]));
  }
  return samples;
}

describe("metrics and health", () => {
  it("exposes per-version metrics that parse as Prometheus text", async () => {
    await using server = await startHttpServer(cliContext(env), { port: 0 });
    const l = '{processor="orders_by_user",version="1"}';
    // The worker reports its batch histogram twice a second.
    const samples = await waitFor(async () => {
      const res = await fetch(`${server.url}/metrics`);
      expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      const s = parsePrometheus(await res.text());
      return s.has(`kappa_view_batch_apply_duration_seconds_count${l}`) && s.get(`kappa_view_events_applied_total${l}`) === placed ? s : undefined;
    }, 10_000, "batch histogram in /metrics");
    expect(samples.get(`kappa_view_checkpoint_sequence${l}`)).toBe(500);
    expect(placed).toBeGreaterThan(0);
    expect(samples.get(`kappa_view_log_head_sequence${l}`)).toBe(500);
    expect(samples.get(`kappa_view_lag_events${l}`)).toBe(0);
    expect(samples.get(`kappa_view_live${l}`)).toBe(1);
    expect(samples.get('kappa_view_state{processor="orders_by_user",version="1",state="live"}')).toBe(1);
    expect(samples.get('kappa_view_state{processor="orders_by_user",version="1",state="building"}')).toBe(0);
    expect(samples.get("kappa_nats_up")).toBe(1);
    expect(samples.get("kappa_log_head_sequence")).toBe(500);
    const buckets = [...samples].filter(([k]) => k.startsWith("kappa_view_batch_apply_duration_seconds_bucket{processor=\"orders_by_user\",version=\"1\""));
    expect(buckets.length).toBeGreaterThan(3);
    const counts = buckets.map(([, v]) => v);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(counts.at(-1)).toBe(samples.get(`kappa_view_batch_apply_duration_seconds_count${l}`));
    expect(samples.get(`kappa_view_batch_apply_duration_seconds_count${l}`)).toBeGreaterThan(0);
  });

  it("stays up through a NATS outage: queries answer from SQLite and /healthz says degraded", async () => {
    // Its own nats-server and worker: the kill must not reach the tests that share this file's server.
    await using env = await TestEnv.start();
    await env.appendOrders(100, 32);
    await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    await using server = await startHttpServer(cliContext(env), { port: 0 });
    const health = async (url: string) => {
      const r = await fetch(`${url}/healthz`);
      return { status: r.status, json: (await r.json()) as { status: string; nats: { reachable: boolean; source: string }; views: { processor: string; readable: boolean }[] } };
    };
    const before = await health(server.url);
    expect(before.status).toBe(200);
    expect(before.json).toMatchObject({ status: "ok", nats: { reachable: true }, views: [{ processor: "orders_by_user", readable: true }] });

    let restarted: NatsServer | undefined;
    await env.server.kill();
    try {
      await waitFor(async () => (await health(server.url)).json.status === "degraded", 10_000, "degraded health");
      const q = async (url: string) => fetch(`${url}/views/orders_by_user/query`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sql: "SELECT count(*) AS n FROM totals" }) });
      expect((await q(server.url)).status).toBe(200);
      const m = await (await fetch(`${server.url}/metrics`)).text();
      expect(m).toMatch(/^kappa_nats_up 0$/m);

      // A server started while NATS is down serves from the worker's local copy of the catalog.
      await using cold = await startHttpServer(cliContext(env), { port: 0 });
      const h = await health(cold.url);
      expect(h.status).toBe(200);
      expect(h.json).toMatchObject({ status: "degraded", nats: { reachable: false, source: "local-copy" } });
      const answer = await q(cold.url);
      expect(answer.status).toBe(200);
      expect(((await answer.json()) as { version: number }).version).toBe(1);

      restarted = await env.server.restart();
      await waitFor(async () => (await health(server.url)).json.status === "ok", 15_000, "healthy again");
      await waitFor(async () => (await health(cold.url)).json.status === "ok", 15_000, "the cold server connected");

      // The catalog watches survive the restart: both servers see a promotion made afterwards.
      await deployModule(env.nc, env.spec, V2, { promote: true });
      for (const url of [server.url, cold.url]) {
        await waitFor(async () => ((await (await fetch(`${url}/views/orders_by_user`)).json()) as { live: number }).live === 2, 20_000, `promotion seen by ${url}`);
      }
    } finally {
      await restarted?.close();
    }
  });
});
