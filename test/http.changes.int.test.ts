import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { connect, type Socket } from "node:net";
import { resolve } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { writeProcessor } from "./support/processors.js";
import { cliContext } from "./support/cli.js";
import { deployModule } from "../src/processors/index.js";
import { startHttpServer, type HttpServer } from "../src/cli/http/index.js";

const V1 = resolve("examples/orders/orders_by_user.ts");
const V2 = resolve("examples/orders/orders_by_user_v2.ts");

interface SseEvent {
  event: string;
  data: any;
  at: number;
}

/** A minimal EventSource over fetch: collects events (and comments) as they arrive. */
class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  status = 0;
  contentType = "";
  private constructor(private readonly abort: AbortController) {}

  static async open(url: string): Promise<SseClient> {
    const abort = new AbortController();
    const c = new SseClient(abort);
    const res = await fetch(url, { signal: abort.signal, headers: { accept: "text/event-stream" } });
    c.status = res.status;
    c.contentType = res.headers.get("content-type") ?? "";
    if (!res.ok || !res.body) {
      abort.abort();
      return c;
    }
    void (async () => {
      const decoder = new TextDecoder();
      let buf = "";
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          let i: number;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let event = "message";
            let data = "";
            for (const line of frame.split("\n")) {
              if (line.startsWith(":")) c.comments.push(line.slice(1).trim());
              else if (line.startsWith("event: ")) event = line.slice(7);
              else if (line.startsWith("data: ")) data += line.slice(6);
            }
            if (data) c.events.push({ event, data: JSON.parse(data), at: Date.now() });
          }
        }
      } catch {
        // aborted
      }
    })();
    return c;
  }

  /** The first event after index `from` that matches; the bound only keeps a lost event from hanging the test (how fast is bench's job). */
  next(match: (e: SseEvent) => boolean, from = 0, timeoutMs = 15_000): Promise<SseEvent> {
    return waitFor(() => this.events.slice(from).find(match), timeoutMs, "an SSE event");
  }

  close(): void {
    this.abort.abort();
  }
}

let env: TestEnv;
let server: HttpServer;

async function metric(name: string): Promise<number> {
  const text = await (await fetch(server.url + "/metrics")).text();
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return Number(line?.split(" ")[1]);
}

beforeAll(async () => {
  env = await TestEnv.start();
  await env.appendOrders(300, 21);
  await env.startWorker();
  await deployModule(env.nc, env.spec, V1);
  await env.waitForRecord("orders_by_user", (r) => r.live === 1);
  server = await startHttpServer(cliContext(env), { port: 0, heartbeatMs: 100 });
});

afterAll(async () => {
  await server?.close();
  await env?.close();
});

const placed = (id: string, user: string, amount: number) => ({ type: "order.placed", id, data: { order: id, user, product: "p1", amount, quantity: 1 } });

describe("change streams: GET /views/:processor/changes", () => {
  it("sends a commit event for each append, with the sequence the live version reached", async () => {
    const c = await SseClient.open(`${server.url}/views/orders_by_user/changes`);
    try {
      expect(c.status).toBe(200);
      expect(c.contentType).toMatch(/text\/event-stream/);
      const ready = await c.next((e) => e.event === "ready");
      expect(ready.data).toMatchObject({ processor: "orders_by_user", version: 1 });
      for (let i = 0; i < 3; i++) {
        const from = c.events.length;
        const seq = await env.append([placed(`commit-${i}`, "someone", 1)]);
        const ev = await c.next((e) => e.event === "commit" && e.data.seq >= seq, from);
        expect(ev.data).toEqual({ version: 1, seq });
      }
      await waitFor(() => c.comments.includes("heartbeat"), 15_000, "a heartbeat comment");
    } finally {
      c.close();
    }
  });

  it("sends a named query's result at once and again whenever it changes", async () => {
    const c = await SseClient.open(`${server.url}/views/orders_by_user/changes?query=top_users&n=3`);
    try {
      const first = await c.next((e) => e.event === "result");
      expect(first.data).toMatchObject({ query: "top_users", version: 1, columns: ["user_id", "orders", "amount"] });
      expect(first.data.rows).toHaveLength(3);
      const from = c.events.length;
      const seq = await env.append([placed("whale-1", "whale", 1_000_000)]);
      const ev = await c.next((e) => e.event === "result" && e.data.rows[0]?.user_id === "whale", from);
      expect(ev.data.seq).toBeGreaterThanOrEqual(seq);
      expect(ev.data.rows[0]).toEqual({ user_id: "whale", orders: 1, amount: 1_000_000 });
      // A commit that leaves the top 3 as they were sends a commit but no new result: results go out in
      // order, so once a later change's result is here, any result for the quiet commit would be before it.
      const quiet = c.events.length;
      const seq2 = await env.append([placed("small-1", "minnow", 0.01)]);
      await c.next((e) => e.event === "commit" && e.data.seq >= seq2, quiet);
      const seq3 = await env.append([placed("whale-2", "whale", 1)]);
      await c.next((e) => e.event === "result" && e.data.seq >= seq3, quiet);
      expect(c.events.slice(quiet).filter((e) => e.event === "result").map((e) => e.data.rows[0])).toEqual([{ user_id: "whale", orders: 2, amount: 1_000_001 }]);
    } finally {
      c.close();
    }
  });

  it("answers an unknown processor or named query with a JSON 404 instead of a stream", async () => {
    const p = await fetch(`${server.url}/views/nope/changes`);
    expect(p.status).toBe(404);
    expect(((await p.json()) as { error: string }).error).toBe("NOT_FOUND");
    const q = await fetch(`${server.url}/views/orders_by_user/changes?query=nope`);
    expect(q.status).toBe(404);
    expect(((await q.json()) as { hint: string }).hint).toMatch(/top_users/);
  });

  it("closes its side when the client goes away", async () => {
    const clients = await Promise.all([1, 2, 3].map(() => SseClient.open(`${server.url}/views/orders_by_user/changes`)));
    await Promise.all(clients.map((c) => c.next((e) => e.event === "ready")));
    expect(await metric("kappa_http_event_streams")).toBeGreaterThanOrEqual(3);
    for (const c of clients) c.close();
    await waitFor(async () => (await metric("kappa_http_event_streams")) === 0, 5000, "streams closed");
  });

  it("follows a promotion: a live event with the new version, then its commits", async () => {
    const c = await SseClient.open(`${server.url}/views/orders_by_user/changes?query=top_users&n=1`);
    try {
      await c.next((e) => e.event === "ready");
      await deployModule(env.nc, env.spec, V2, { promote: true });
      const live = await c.next((e) => e.event === "live", 0, 30_000);
      expect(live.data).toMatchObject({ version: 2, previous: 1 });
      const from = c.events.length;
      const seq = await env.append([placed("after-promote", "whale", 1)]);
      const commit = await c.next((e) => e.event === "commit" && e.data.seq >= seq, from);
      expect(commit.data.version).toBe(2);
      const result = await c.next((e) => e.event === "result" && e.data.version === 2 && e.data.rows[0]?.amount === 1_000_002, 0);
      expect(result.data.rows[0].user_id).toBe("whale");
    } finally {
      c.close();
    }
  });
  it("caps named-query re-runs over all streams: with one slot, one process and a queue of one, every stream still gets the new result and none an error", async () => {
    await using tight = await startHttpServer(cliContext(env), { port: 0, queryProcesses: 1, queryQueue: 1, maxFollowQueries: 1 });
    const clients = await Promise.all(Array.from({ length: 6 }, () => SseClient.open(`${tight.url}/views/orders_by_user/changes?query=top_users&n=3`)));
    try {
      await Promise.all(clients.map((c) => c.next((e) => e.event === "result", 0, 10_000)));
      await env.append([placed("giant-1", "giant", 2_000_000)]);
      await Promise.all(clients.map((c) => c.next((e) => e.event === "result" && e.data.rows[0]?.user_id === "giant", 0, 10_000)));
      expect(clients.flatMap((c) => c.events.filter((e) => e.event === "error"))).toEqual([]);
    } finally {
      for (const c of clients) c.close();
    }
  });
});

// A view whose named query answers megabytes: one row per key, each
// `hex(zeroblob(:n))` long and ending in the event's own mark, so an event changes the answer but not its size.
const BLOBS = writeProcessor(`
export default {
  name: "blobs",
  subjects: ["blob.*"],
  schema: ["CREATE TABLE t (k INTEGER PRIMARY KEY, w TEXT NOT NULL)"],
  on: { "blob.put": (e, ctx) => { ctx.db.prepare("INSERT OR REPLACE INTO t VALUES (?, ?)").run(e.data.k, e.data.w); } },
  queries: { big: "SELECT k, hex(zeroblob(:n)) || w AS v FROM t ORDER BY k" },
};
`);

/** A client that sends the request and then never reads: its socket is paused, so the kernel's buffers fill and stay full. */
async function stuckClient(url: string): Promise<Socket> {
  const u = new URL(url);
  const sock = connect(Number(u.port), u.hostname);
  await new Promise((r) => sock.once("connect", r));
  sock.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nAccept: text/event-stream\r\n\r\n`);
  sock.pause();
  return sock;
}

/** A client that reads everything, joining a frame's chunks only once it is complete (a 16 MB event arrives in hundreds). */
async function resultReader(url: string, abort: AbortController): Promise<{ results: { rows: { k: number; v: string }[] }[] }> {
  const res = await fetch(url, { signal: abort.signal });
  const out = { results: [] as { rows: { k: number; v: string }[] }[] };
  void (async () => {
    let parts: Buffer[] = [];
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        parts.push(Buffer.from(chunk));
        if (!Buffer.from(chunk).includes("\n\n")) continue;
        const frames = Buffer.concat(parts).toString("utf8").split("\n\n");
        parts = [Buffer.from(frames.pop()!)];
        for (const f of frames) if (f.startsWith("event: result\n")) out.results.push(JSON.parse(f.slice(f.indexOf("data: ") + 6)));
      }
    } catch {
      // aborted
    }
  })();
  return out;
}

describe("a change stream whose client stops reading", () => {
  it("hands a 16 MB result to the socket in pieces, never buffering past the bound; cuts the client off once more waits behind it; a reader that reads gets it whole", async () => {
    await deployModule(env.nc, env.spec, BLOBS);
    await env.append([1, 2].map((k) => ({ type: "blob.put", id: `blob-${k}-a`, data: { k, w: "a" } })));
    await env.waitForRecord("blobs", (r) => r.live === 1);
    // Its own server: the peak is this test's alone, and a loaded machine gets time for the 16 MB query.
    await using own = await startHttpServer(cliContext(env), { port: 0, heartbeatMs: 100, defaultTimeoutMs: 60_000 });
    const gauge = async (name: string) => Number(/^(\S+) (\S+)$/m.exec((await (await fetch(own.url + "/metrics")).text()).split("\n").find((l) => l.startsWith(name + " ")) ?? "")?.[2]);
    const n = 3_999_000; // two rows of 2n hex digits: just under the 16 MiB answer cap
    const url = `${own.url}/views/blobs/changes?query=big&n=${n}`;
    const abort = new AbortController();
    const stuck = await stuckClient(url);
    try {
      const reader = await resultReader(url, abort);
      await waitFor(() => reader.results.length >= 1, 30_000, "the reading client's first result");
      expect(reader.results[0]!.rows.map((r) => [r.k, r.v.length, r.v.endsWith("0a")])).toEqual([[1, 2 * n + 1, true], [2, 2 * n + 1, true]]);
      // The stuck client's result is under way: the kernel's socket buffers take a few MB, the rest waits in the
      // queue, and the response's buffer holds at most a piece past its high-water mark.
      // (Written whole, the result would sit in the response's buffer: the peak shows it.)
      const underWay = async () => (await gauge("kappa_http_event_stream_queued_bytes")) > 4 << 20 || (await gauge("kappa_http_event_stream_buffered_bytes_peak")) > 4 << 20;
      await waitFor(underWay, 30_000, "the stuck client's result under way");
      // Never more than the bound, at any write, for either client.
      expect(await gauge("kappa_http_event_stream_buffered_bytes_peak")).toBeLessThan(1 << 20);
      expect(await gauge("kappa_http_event_streams")).toBe(2);
      // A second result of the same size would wait behind the first: the stuck client is cut off and its bytes freed.
      await env.append([{ type: "blob.put", id: "blob-1-b", data: { k: 1, w: "b" } }]);
      await waitFor(() => reader.results.some((r) => r.rows[0]!.v.endsWith("0b")), 30_000, "the reading client's second result");
      await waitFor(async () => (await gauge("kappa_http_event_streams")) === 1, 10_000, "the stuck client cut off");
      expect(await gauge("kappa_http_event_stream_queued_bytes")).toBe(0);
    } finally {
      abort.abort();
      stuck.destroy();
    }
  }, 90_000);
});

