import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { TestEnv, waitFor } from "./support/env.js";
import { cliContext } from "./support/cli.js";
import { CliContext } from "../src/cli/context.js";
import { eventDigest, readLog } from "./support/logRead.js";
import { startHttpServer, type HttpServer } from "../src/cli/http/index.js";
import { HEADER_BYTES, connectNats, type NatsServer } from "../src/log/index.js";

const TOKEN = "append-test-token";
const AUTH = { authorization: `Bearer ${TOKEN}` };

let env: TestEnv;
let server: HttpServer;

interface Answer {
  status: number;
  json: any;
  headers: Headers;
}

async function post(base: string, path: string, body: unknown, headers: Record<string, string> = AUTH, contentType = "application/json"): Promise<Answer> {
  const res = await fetch(base + path, { method: "POST", headers: { "content-type": contentType, ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });
  return { status: res.status, json: await res.json(), headers: res.headers };
}

const order = (id: string, amount = 1) => ({ type: "order.placed", id, data: { order: id, user: `u${id.length}`, amount } });

/** Starts a server and waits until it reaches NATS (before that it answers appends with 503, as it should). */
async function serving(e: TestEnv, opts: Parameters<typeof startHttpServer>[1]): Promise<HttpServer> {
  const s = await startHttpServer(cliContext(e), opts);
  await waitFor(() => s.health().reachable, 30_000, "the server to reach NATS");
  return s;
}

async function lastSeq(e: TestEnv = env): Promise<number> {
  return (await e.jsm.streams.info(e.spec.stream)).state.last_seq;
}

beforeAll(async () => {
  env = await TestEnv.start();
  server = await serving(env, { port: 0, token: TOKEN, append: { allow: true, limits: { maxRequests: 64 } } });
});

afterAll(async () => {
  await server?.close();
  await env?.close();
});

describe("POST /events: events in over HTTP", () => {
  it("refuses to take writes without a token, also on loopback, and refuses writes when not allowed", async () => {
    await expect(startHttpServer(cliContext(env), { port: 0, append: { allow: true } })).rejects.toMatchObject({ code: "TOKEN_REQUIRED" });
    const none = await post(server.url, "/events", [order("x")], {});
    expect(none.status).toBe(401);
    expect(none.json.error).toBe("UNAUTHORIZED");
    // The status page's cookie authorizes reads, never writes.
    const cookie = await post(server.url, "/events", [order("x")], { cookie: `kappa_token=${TOKEN}` });
    expect(cookie.status).toBe(401);
    await using readOnly = await startHttpServer(cliContext(env), { port: 0 });
    const off = await post(readOnly.url, "/events", [order("x")], {});
    expect(off.status).toBe(403);
    expect(off.json.hint).toMatch(/--allow-append/);
  });

  it("answers each event's sequence, in request order, and stores them in that order", async () => {
    const before = await lastSeq();
    const r = await post(server.url, "/events", [order("a1", 5), order("a2", 6), { type: "user.signed_up", data: { user: "u9" } }]);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ count: 3, stored: 3, duplicates: 0, seqs: [before + 1, before + 2, before + 3] });
    const log = (await readLog(env.nc, env.spec)).filter((e) => e.seq > before);
    expect(log.map((e) => [e.seq, e.type, e.id])).toEqual([
      [before + 1, "order.placed", "a1"],
      [before + 2, "order.placed", "a2"],
      [before + 3, "user.signed_up", log[2]!.id],
    ]);
    expect(JSON.parse(log[0]!.data)).toEqual({ order: "a1", user: "u2", amount: 5 });
  });

  it("stores nothing twice on a retry: same ids, an overlapping request, an Idempotency-Key", async () => {
    const first = await post(server.url, "/events", [order("b1"), order("b2")]);
    const retry = await post(server.url, "/events", [order("b1"), order("b2")]);
    expect(retry.status).toBe(200);
    expect(retry.json).toMatchObject({ count: 2, stored: 0, duplicates: 2, seqs: first.json.seqs, duplicateItems: [0, 1] });
    const overlap = await post(server.url, "/events", [order("b2"), order("b3"), order("b3")]);
    expect(overlap.json).toMatchObject({ count: 3, stored: 1, duplicates: 2, duplicateItems: [0, 2] });
    expect(overlap.json.seqs[0]).toBe(first.json.seqs[1]);
    expect(overlap.json.seqs[2]).toBe(overlap.json.seqs[1]);
    const key = { ...AUTH, "idempotency-key": "req-77" };
    const k1 = await post(server.url, "/events/page.viewed", [{ page: "/" }, { page: "/a" }], key);
    const k2 = await post(server.url, "/events/page.viewed", [{ page: "/" }, { page: "/a" }], key);
    expect(k1.json.stored).toBe(2);
    expect(k2.json).toMatchObject({ stored: 0, duplicates: 2, seqs: k1.json.seqs });
    const log = await readLog(env.nc, env.spec);
    for (const id of ["b1", "b2", "b3", "req-77:0", "req-77:1"]) expect(log.filter((e) => e.id === id)).toHaveLength(1);
  });

  it("takes NDJSON and data objects of one type, with ids from --id-field", async () => {
    await using byField = await serving(env, { port: 0, token: TOKEN, append: { allow: true, idField: "order" } });
    const body = '{"order": "n1", "amount": 3}\n\n{"order": "n2", "amount": 4}\n';
    const r = await post(byField.url, "/events/order.placed", body, AUTH, "application/x-ndjson");
    expect(r.status).toBe(200);
    expect(r.json.stored).toBe(2);
    const again = await post(byField.url, "/events/order.placed", body, AUTH, "application/x-ndjson");
    expect(again.json).toMatchObject({ stored: 0, duplicates: 2, seqs: r.json.seqs });
    const log = await readLog(env.nc, env.spec);
    expect(log.filter((e) => e.id === "n1" || e.id === "n2").map((e) => e.type)).toEqual(["order.placed", "order.placed"]);
  });

  it("names a malformed item by its index and publishes nothing of the request", async () => {
    const before = await lastSeq();
    const r = await post(server.url, "/events", [order("m1"), order("m2"), { type: "order.placed", id: "m3" }, order("m4"), { type: "bad type!", data: {} }]);
    expect(r.status).toBe(400);
    expect(r.json.invalid).toBe(2);
    expect(r.json.errors.map((e: { index: number }) => e.index)).toEqual([2, 4]);
    expect(r.json.message).toMatch(/item 2: expected an envelope/);
    expect(r.json.hint).toMatch(/nothing of it was published/);
    const nd = await post(server.url, "/events/order.placed", '{"order": "m5"}\n{not json\n', AUTH, "application/x-ndjson");
    expect(nd.status).toBe(400);
    expect(nd.json.errors[0]).toMatchObject({ index: 1, line: 2, error: "BAD_EVENT" });
    const str = await post(server.url, "/events", JSON.stringify(JSON.stringify(order("m6"))));
    expect(str.status).toBe(400);
    expect(str.json.message).toMatch(/JSON string/);
    const empty = await post(server.url, "/events", []);
    expect(empty.status).toBe(400);
    expect(empty.json.error).toBe("NO_EVENTS");
    const tooBig = await post(server.url, "/events", "x".repeat(2 * 1024 * 1024), AUTH, "application/x-ndjson");
    expect(tooBig.status).toBe(413);
    expect(tooBig.json.hint).toMatch(/--append-body-limit/);
    expect(await lastSeq()).toBe(before);
    const metrics = await (await fetch(server.url + "/metrics", { headers: AUTH })).text();
    expect(metrics).toMatch(/kappa_http_append_refused_total\{code="BAD_EVENT"\} [1-9]/);
    expect(metrics).toMatch(/kappa_http_append_refused_total\{code="BODY_TOO_LARGE"\} 1/);
    expect(metrics).toMatch(/kappa_http_append_events_total\{result="duplicate"\} [1-9]/);
  });

  it("refuses ids NATS would make collide: whitespace at either end, and --id-field values that are not strings or numbers", async () => {
    // NATS trims header values: " w-1" would be stored as "w-1", so it would be dropped as a duplicate of it.
    expect((await post(server.url, "/events", [order("w-1")])).json.stored).toBe(1);
    const before = await lastSeq();
    const ws = await post(server.url, "/events", [order("w-2"), order(" w-1", 2)]);
    expect(ws.status, JSON.stringify(ws.json)).toBe(400);
    expect(ws.json.errors).toEqual([{ index: 1, error: "BAD_EVENT", message: 'item 1: the id " w-1" starts or ends with whitespace' }]);
    expect((await post(server.url, "/events", [order("w-1\t", 2)])).json.errors[0].message).toBe('item 0: the id "w-1\\t" starts or ends with whitespace');
    await using byField = await serving(env, { port: 0, token: TOKEN, append: { allow: true, idField: "order" } });
    // Both would become the id "[object Object]".
    const objects = await post(byField.url, "/events/order.placed", '{"order": {"n": 1}}\n{"order": {"n": 2}}\n{"order": "ok-1"}\n{"order": [3]}\n', AUTH, "application/x-ndjson");
    expect(objects.status).toBe(400);
    expect(objects.json.errors.map((e: { index: number; line: number; message: string }) => [e.index, e.line, e.message])).toEqual([
      [0, 1, "item 0 (line 1): field order (for --id-field) is an object, not a string or a number"],
      [1, 2, "item 1 (line 2): field order (for --id-field) is an object, not a string or a number"],
      [3, 4, "item 3 (line 4): field order (for --id-field) is an array, not a string or a number"],
    ]);
    const spaced = await post(byField.url, "/events/order.placed", [{ order: "ok-2 " }]);
    expect(spaced.json.errors[0].message).toBe('item 0: field order (for --id-field) "ok-2 " starts or ends with whitespace');
    expect(await lastSeq()).toBe(before);
  });

  it("counts the headers against NATS's max_payload: an event too large with them is a 400 naming it, not a 503 to retry forever", async () => {
    await using wide = await serving(env, { port: 0, token: TOKEN, append: { allow: true, bodyLimit: 4 << 20 } });
    const max = env.nc.info!.max_payload;
    const before = await lastSeq();
    // {"blob":"x…"} is 11 bytes of JSON around the x's: this event's data alone fits max_payload, its headers do not.
    const sized = (id: string, bytes: number) => ({ type: "blob.put", id, data: { blob: "x".repeat(bytes - 11) } });
    const over = await post(wide.url, "/events", [order("fits-1"), sized("big-1", max - 50)]);
    expect(over.status, JSON.stringify(over.json)).toBe(400);
    expect(over.json.errors).toEqual([{ index: 1, error: "EVENT_TOO_LARGE", message: `item 1: event is ${max - 50 + 5 + HEADER_BYTES} bytes (${max - 50} of data, up to ${5 + HEADER_BYTES} of headers), above the server's limit of ${max}` }]);
    expect(await lastSeq()).toBe(before);
    // The largest event the check lets through is stored, whole: the bound holds for the headers Kappa really sends.
    const edge = await post(wide.url, "/events", [order("fits-2"), sized("big-2", max - 5 - HEADER_BYTES)]);
    expect(edge.status, JSON.stringify(edge.json)).toBe(200);
    const stored = (await readLog(env.nc, env.spec)).find((e) => e.id === "big-2")!;
    expect(stored.data.length).toBe(max - 5 - HEADER_BYTES);
  });

  it("refuses more than 1000 events in one request whole, also when --append-max-events asks for more", async () => {
    await using wide = await serving(env, { port: 0, token: TOKEN, append: { allow: true, maxEvents: 5000 } });
    const before = await lastSeq();
    const many = Array.from({ length: 1001 }, (_, i) => order(`big${i}`));
    for (const url of [server.url, wide.url]) {
      const a = await post(url, "/events", many);
      expect(a.status).toBe(400);
      expect(a.json.error).toBe("TOO_MANY_EVENTS");
    }
    expect(await lastSeq()).toBe(before);
  });

  it("answers 503 with Retry-After, not 500, when NATS stops answering before the first request is stored", async () => {
    // Its own nats-server: the pause must not reach the tests that share this file's server.
    await using own = await TestEnv.start();
    // A fresh server has not yet set up atomic batches: that step is the first thing NATS trouble hits.
    await using fresh = await serving(own, { port: 0, token: TOKEN, append: { allow: true, ackTimeoutMs: 1000 } });
    const before = await lastSeq(own);
    process.kill(own.server.pid, "SIGSTOP");
    let a: Answer;
    try {
      a = await post(fresh.url, "/events", [order("stalled1"), order("stalled2")]);
    } finally {
      process.kill(own.server.pid, "SIGCONT");
    }
    expect(a.status, JSON.stringify(a.json)).toBe(503);
    expect(Number(a.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await lastSeq(own)).toBe(before);
  }, 30_000);

  it("answers the stream's own limit on batches in flight as retryable, never as the request's fault", async () => {
    await using wide = await serving(env, { port: 0, token: TOKEN, append: { allow: true, limits: { maxRequests: 1000 } } });
    const reqs = Array.from({ length: 120 }, (_, q) => Array.from({ length: 3 }, (_, k) => order(`inflight${q}-${k}`)));
    const first = await Promise.all(reqs.map((r) => post(wide.url, "/events", r)));
    // 120 requests at once are more batches than the stream keeps open (50): the rest must be told to retry.
    const wrong = first.map((a) => `${a.status} ${a.json.error ?? ""}`).filter((s) => !/^(200|503|429) /.test(s));
    expect(wrong.slice(0, 3), `${wrong.length} of 120 answered as the request's fault`).toEqual([]);
    for (const a of first) if (a.status === 503) expect(Number(a.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    for (const [q, a] of first.entries()) {
      if (a.status === 200) continue;
      const r = await waitFor(async () => {
        const x = await post(wide.url, "/events", reqs[q]!);
        return x.status === 200 ? x : undefined;
      }, 20_000, "a retry to succeed");
      expect(r.json.count).toBe(3);
    }
  }, 60_000);

  it("answers 429 with Retry-After beyond the rate limit, and beyond the publishes in flight", async () => {
    await using limited = await serving(env, { port: 0, token: TOKEN, append: { allow: true, maxEvents: 10, limits: { ratePerSec: 1 } } });
    const ten = Array.from({ length: 10 }, (_, i) => order(`r${i}`));
    expect((await post(limited.url, "/events", ten)).status).toBe(200);
    const over = await post(limited.url, "/events", ten.slice(0, 5));
    expect(over.status).toBe(429);
    expect(over.json.error).toBe("RATE_LIMITED");
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThanOrEqual(3);

    // Its own nats-server for the pause, so the tests sharing this file's server never meet a stopped one.
    await using own = await TestEnv.start();
    await using narrow = await serving(own, { port: 0, token: TOKEN, append: { allow: true, limits: { maxRequests: 1 } } });
    // A paused NATS holds the first request in flight; the second finds no room.
    process.kill(own.server.pid, "SIGSTOP");
    try {
      const slow = post(narrow.url, "/events", [order("s1"), order("s2")]);
      await waitFor(async () => /^kappa_http_append_inflight_events 2$/m.test(await (await fetch(`${narrow.url}/metrics`, { headers: AUTH })).text()), 10_000, "the first request in flight");
      const busy = await post(narrow.url, "/events", [order("s3")]);
      expect(busy.status).toBe(429);
      expect(busy.json.error).toBe("APPEND_BUSY");
      expect(busy.headers.get("retry-after")).toBe("1");
      process.kill(own.server.pid, "SIGCONT");
      expect((await slow).status).toBe(200);
    } finally {
      process.kill(own.server.pid, "SIGCONT");
    }
  });

  it("stores every event exactly once with concurrent posters that retry (content digest)", async () => {
    const before = await lastSeq();
    const posters = 6;
    const requests: { type: string; id: string; data: Record<string, unknown> }[][] = [];
    for (let p = 0; p < posters; p++) {
      for (let q = 0; q < 8; q++) requests.push(Array.from({ length: 25 }, (_, k) => ({ type: k % 3 ? "order.placed" : "order.paid", id: `c${p}-${q}-${k}`, data: { poster: p, req: q, k, amount: k * 7 } })));
    }
    // Every poster sends its own requests, retries some at once, and re-sends a neighbour's (overlapping retries).
    const answers = await Promise.all(
      Array.from({ length: posters }, async (_, p) => {
        const mine = requests.slice(p * 8, p * 8 + 8);
        const theirs = requests.slice(((p + 1) % posters) * 8, ((p + 1) % posters) * 8 + 4);
        const out: Answer[] = [];
        for (const req of [...mine, ...theirs]) {
          const sends = [post(server.url, "/events", req)];
          if (req[0]!.data.req === p % 8) sends.push(post(server.url, "/events", req));
          out.push(...(await Promise.all(sends)));
        }
        for (const req of mine.slice(0, 3)) out.push(await post(server.url, "/events", req));
        return out;
      }),
    );
    for (const a of answers.flat()) expect(a.status, JSON.stringify(a.json)).toBe(200);
    const log = (await readLog(env.nc, env.spec)).filter((e) => e.seq > before);
    const expected = requests.flat().map((e) => ({ type: e.type, id: e.id, data: JSON.stringify(e.data) }));
    expect(log).toHaveLength(expected.length);
    expect(eventDigest(log)).toBe(eventDigest(expected));
    // Every answer's sequences point at the events it carried.
    const bySeq = new Map(log.map((e) => [e.seq, e.id]));
    for (const a of answers.flat()) for (const s of a.json.seqs as number[]) expect(bySeq.get(s)).toMatch(/^c\d/);
  });
});

describe("POST /events while NATS dies", () => {
  it("answers 503 with Retry-After and leaves no request half-stored; retries complete it exactly once", async () => {
    await using own = await TestEnv.start();
    await using srv = await serving(own, { port: 0, token: TOKEN, append: { allow: true, ackTimeoutMs: 1500, limits: { maxRequests: 48 } } });
    const requests = Array.from({ length: 40 }, (_, q) => Array.from({ length: 200 }, (_, k) => ({ type: "order.placed", id: `k${q}-${k}`, data: { q, k, pad: "p".repeat(200) } })));
    // Four posters send back to back; NATS is killed once five requests are stored, with the others in flight.
    let done = 0;
    let inFlightAtKill = -1;
    const inFlight = new Set<number>();
    let killed: Promise<void> | undefined;
    const answers: Answer[] = new Array(requests.length);
    await Promise.all(
      Array.from({ length: 4 }, async (_, p) => {
        for (let q = p; q < requests.length; q += 4) {
          inFlight.add(q);
          const a = await post(srv.url, "/events", requests[q]!);
          inFlight.delete(q);
          answers[q] = a;
          if (a.status === 200 && ++done === 5) {
            inFlightAtKill = inFlight.size;
            killed = own.server.kill();
          }
        }
      }),
    );
    await killed;
    expect(inFlightAtKill).toBeGreaterThan(0);
    const codes = new Set(answers.map((a) => a.status));
    // 429 (too many in flight) stores nothing either; the retries below take those requests too.
    expect([...codes].every((c) => c === 200 || c === 429 || c === 503), JSON.stringify(answers.map((a) => a.json.error))).toBe(true);
    const failed = answers.flatMap((a, q) => (a.status === 503 ? [q] : []));
    expect(failed.length).toBeGreaterThan(0);
    for (const q of failed) expect(Number(answers[q]!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);

    let restarted: NatsServer | undefined;
    try {
      restarted = await own.server.restart();
      const nc = await connectNats({ url: restarted.url });
      try {
        const check = async () => {
          const log = await readLog(nc, own.spec);
          const per = new Map<number, number>();
          for (const e of log) {
            const q = Number(/^k(\d+)-/.exec(e.id)![1]);
            per.set(q, (per.get(q) ?? 0) + 1);
          }
          return { log, per };
        };
        const after = await check();
        // All or nothing: each request is in the log whole or not at all; every 200 is there whole.
        for (const [q, n] of after.per) expect(n, `request ${q}`).toBe(200);
        answers.forEach((a, q) => a.status === 200 && expect(after.per.get(q)).toBe(200));
        // Retrying every request after the outage stores each event exactly once.
        await waitFor(() => srv.health().reachable, 20_000, "the server to reconnect");
        for (const req of requests) {
          const r = await waitFor(async () => {
            const x = await post(srv.url, "/events", req);
            return x.status === 200 ? x : undefined;
          }, 20_000, "a retry to succeed");
          expect(r.json.count).toBe(200);
        }
        const final = await check();
        expect(final.log).toHaveLength(40 * 200);
        const expected = requests.flat().map((e) => ({ type: e.type, id: e.id, data: JSON.stringify(e.data) }));
        expect(eventDigest(final.log)).toBe(eventDigest(expected));
      } finally {
        await nc.close();
      }
    } finally {
      await restarted?.kill();
    }
  }, 180_000);
});

describe("POST /events on a 3-server cluster (stream with 3 replicas)", () => {
  it("stores each event once with retries and overlapping requests from posters on different servers (digest)", async () => {
    await using c = await TestEnv.start({ cluster: 3 });
    const servers = await Promise.all(c.cluster.urls.map((url) => startHttpServer(new CliContext({ nats: url, dataDir: c.dataDir.root, stream: c.spec.stream, prefix: c.spec.prefix }), { port: 0, token: TOKEN, append: { allow: true } })));
    try {
      // Each server opens the catalog first; until then it answers 503 (as it should), so wait for all three.
      await waitFor(() => servers.every((s) => s.health().reachable), 30_000, "the three servers to reach NATS");
      const requests = Array.from({ length: 12 }, (_, q) => Array.from({ length: 20 }, (_, k) => ({ type: "order.placed", id: `z${q}-${k}`, data: { q, k } })));
      // Each request goes to one server, its retry to another, and every third overlaps the next one.
      await Promise.all(
        requests.map(async (req, q) => {
          const first = await post(servers[q % 3]!.url, "/events", req);
          const again = await post(servers[(q + 1) % 3]!.url, "/events", q % 3 === 0 ? [...req.slice(10), ...(requests[q + 1] ?? []).slice(0, 5)] : req);
          expect(first.status, JSON.stringify(first.json)).toBe(200);
          expect(again.status, JSON.stringify(again.json)).toBe(200);
          if (q % 3 !== 0) expect(again.json.seqs).toEqual(first.json.seqs);
        }),
      );
      const log = await readLog(c.nc, c.spec);
      const expected = requests.flat().map((e) => ({ type: e.type, id: e.id, data: JSON.stringify(e.data) }));
      expect(log).toHaveLength(expected.length);
      expect(eventDigest(log)).toBe(eventDigest(expected));
    } finally {
      for (const s of servers) await s.close();
    }
  }, 180_000);
});
