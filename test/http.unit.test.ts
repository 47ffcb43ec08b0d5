import { describe, it, expect } from "vitest";
import { KappaError, InputError, NotFoundError } from "../src/errors.js";
import { QueryTimeoutError } from "../src/views/index.js";
import { assertSafeBind, isLoopback } from "../src/cli/http/auth.js";
import { bodyOf, statusOf } from "../src/cli/http/errors.js";
import { pageFile } from "../src/cli/http/assets.js";
import { CheckpointRates } from "../src/cli/http/rates.js";
import { agreedHead } from "../src/cli/http/snapshot.js";
import { CONTROL_KEYS, paramValue, queryBody, queryControls, queryStringParams } from "../src/cli/http/params.js";

const LIMITS = { maxRows: 100_000, defaultTimeoutMs: 5000, maxTimeoutMs: 60_000, maxBytes: 1 << 20 };

describe("binding", () => {
  it("knows loopback addresses from the rest", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]", "::ffff:127.0.0.1"]) expect(isLoopback(h), h).toBe(true);
    for (const h of ["0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "example.com", "128.0.0.1"]) expect(isLoopback(h), h).toBe(false);
  });

  it("needs a non-empty token for anything but loopback", () => {
    expect(() => assertSafeBind("127.0.0.1", undefined)).not.toThrow();
    expect(() => assertSafeBind("0.0.0.0", "t0k3n")).not.toThrow();
    expect(() => assertSafeBind("0.0.0.0", undefined)).toThrow(/refusing to serve on 0\.0\.0\.0 without a token/);
    expect(() => assertSafeBind("::", undefined)).toThrow(KappaError);
    expect(() => assertSafeBind("127.0.0.1", " ")).toThrow(/empty/);
  });
});

describe("query-string parameters", () => {
  it("binds numeric strings as numbers and keeps the rest as text", () => {
    expect(paramValue("10")).toBe(10);
    expect(paramValue("-2.5")).toBe(-2.5);
    expect(paramValue("007")).toBe("007");
    expect(paramValue("1e3")).toBe("1e3");
    expect(paramValue("99999999999999999999")).toBe("99999999999999999999");
    expect(paramValue("u1")).toBe("u1");
  });

  it("skips control keys, strips :@$ prefixes and refuses repeated keys", () => {
    expect(queryStringParams({ n: "3", ":user": "u1", limit: "5", minSeq: "9" }, CONTROL_KEYS)).toEqual({ n: 3, user: "u1" });
    expect(() => queryStringParams({ n: ["1", "2"] }, CONTROL_KEYS)).toThrow(/more than once/);
  });

  it("checks limit, timeoutMs, minSeq and version against the server's limits", () => {
    // No limit: no cut, the server's row cap applies (more rows is RESULT_TOO_LARGE, not a silent cut).
    expect(queryControls({}, LIMITS)).toEqual({ maxRows: 100_000, timeoutMs: 5000, maxBytes: 1 << 20 });
    expect(queryControls({ limit: "7", timeoutMs: "250", minSeq: "12", version: "v2", maxBytes: "1000" }, LIMITS)).toEqual({ limit: 7, maxRows: 100_000, timeoutMs: 250, minSeq: 12, version: 2, maxBytes: 1000 });
    expect(() => queryControls({ limit: 100_001 }, LIMITS)).toThrow(/limit must be an integer from 1 to 100000/);
    try {
      queryControls({ limit: 100_001 }, LIMITS);
    } catch (e) {
      expect((e as { hint: string }).hint).toMatch(/--max-result-rows/);
    }
    expect(() => queryControls({ maxBytes: 2 << 20 }, LIMITS)).toThrow(/maxBytes must be an integer from 1 to 1048576/);
    expect(() => queryControls({ limit: "0" }, LIMITS)).toThrow(/limit must be an integer from 1 to 100000/);
    expect(() => queryControls({ timeoutMs: 600_000 }, LIMITS)).toThrow(/timeoutMs/);
    expect(() => queryControls({ minSeq: "-1" }, LIMITS)).toThrow(/minSeq/);
    expect(() => queryControls({ version: "x" }, LIMITS)).toThrow(/not a valid version/);
  });

  it("checks a query body's shape and binds booleans as 0/1", () => {
    expect(queryBody({ sql: "SELECT :a", params: { a: true } }, LIMITS)).toMatchObject({ sql: "SELECT :a", params: { a: 1 } });
    expect(() => queryBody([], LIMITS)).toThrow(/JSON object/);
    expect(() => queryBody({ sql: 1 }, LIMITS)).toThrow(/sql must be a string/);
    expect(() => queryBody({ sql: "SELECT 1", params: [1] }, LIMITS)).toThrow(/params must be an object/);
    expect(() => queryBody({ sql: "SELECT 1", params: { a: { b: 1 } } }, LIMITS)).toThrow(/is an object/);
    expect(() => queryBody({ sql: "SELECT 1", min_seq: 1 }, LIMITS)).toThrow(/unknown field min_seq/);
  });
});

describe("errors as HTTP", () => {
  it("maps error codes to status codes", () => {
    expect(statusOf(new InputError("x", { code: "QUERY_REFUSED" }))).toBe(400);
    expect(statusOf(new NotFoundError("x"))).toBe(404);
    expect(statusOf(new QueryTimeoutError(10))).toBe(504);
    expect(statusOf(new KappaError("MIN_SEQ_TIMEOUT", "x"))).toBe(504);
    expect(statusOf(new KappaError("NO_LIVE_VERSION", "x"))).toBe(503);
    expect(statusOf(new KappaError("VIEW_MISSING", "x"))).toBe(503);
    expect(statusOf(new KappaError("SOMETHING_ELSE", "x"))).toBe(500);
    expect(statusOf(new KappaError("QUERY_FAILED", "query failed: The supplied SQL string contains more than one statement"))).toBe(400);
    expect(statusOf(new KappaError("QUERY_FAILED", "query failed: disk I/O error"))).toBe(500);
    expect(statusOf(Object.assign(new Error("too large"), { statusCode: 413 }))).toBe(413);
    expect(statusOf(new Error("boom"))).toBe(500);
  });

  it("gives every error a JSON body with error, message and a hint", () => {
    expect(bodyOf(new InputError("bad", { hint: "fix it", code: "QUERY_REFUSED" }))).toEqual({ error: "QUERY_REFUSED", message: "bad", hint: "fix it" });
    expect(bodyOf(Object.assign(new Error("Request body is too large"), { statusCode: 413 }))).toMatchObject({ error: "BODY_TOO_LARGE", hint: expect.stringMatching(/64 KiB/) });
    expect(bodyOf(new Error("boom"))).toMatchObject({ error: "INTERNAL", message: "boom" });
  });
});

describe("the status page", () => {
  it("carries a script that parses (checked without a browser too), and loads only its own assets", () => {
    expect(() => new Function(pageFile("status.js"))).not.toThrow();
    expect(pageFile("status.js")).toMatch(/new EventSource\("events\/status"\)/);
    const html = pageFile("status.html");
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(refs.sort()).toEqual(["assets/status.css", "assets/status.js", "assets/uPlot.iife.min.js", "assets/uPlot.min.css"]);
    for (const r of refs) expect(pageFile(r!.slice("assets/".length)).length).toBeGreaterThan(100);
  });
});

describe("numbers that agree", () => {
  it("never shows a log head below a checkpoint read later", () => {
    expect(agreedHead([100, 90], 120)).toBe(120);
    expect(agreedHead([100, null], 80)).toBe(100);
    expect(agreedHead([null, undefined], 5)).toBeNull();
  });

  it("measures how fast a checkpoint moves, over seconds, and starts over on a rebuilt file", () => {
    const r = new CheckpointRates();
    expect(r.observe("p/1", 0, 0)).toBeNull();
    expect(r.observe("p/1", 500, 1000)).toBe(500);
    expect(r.observe("p/1", 500, 1100)).toBe(500); // too soon for a new reading: the last one stands
    expect(r.observe("p/1", 503, 2000)).toBe(252);
    expect(r.observe("p/1", 503, 9000)).toBe(0); // nothing moved for more than the window
    expect(r.observe("p/1", 10, 9500)).toBeNull(); // a smaller checkpoint: a new file
  });
});
