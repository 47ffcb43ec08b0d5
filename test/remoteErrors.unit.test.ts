import { describe, it, expect } from "vitest";
import { errors as natsErrors } from "@nats-io/nats-core";
import { InputError, KappaError, NotFoundError } from "../src/errors.js";
import { QueryBusyError, QueryTimeoutError, ResultTooLargeError, faultOf, isFinal, queryError } from "../src/views/index.js";

const caps = { maxBytes: 1 << 20, maxRows: 100, memoryBytes: 1 << 28 };

describe("whose fault a remote query's error is", () => {
  it("only errors about the query itself are final; everything local to the replica goes to another one", () => {
    // The query's own: SQL that does not compile, a refused statement, a missing parameter, a result over the caps.
    expect(faultOf(queryError({ message: "no such column: nope" }, caps))).toBe("query");
    expect(faultOf(queryError({ message: "near \"SELEC\": syntax error" }, caps))).toBe("query");
    expect(faultOf(queryError({ message: "attempt to write a readonly database", code: "SQLITE_READONLY" }, caps))).toBe("query");
    expect(faultOf(queryError({ message: 'Missing named parameter "user"' }, caps))).toBe("query");
    expect(faultOf(new ResultTooLargeError(100, "rows"))).toBe("query");
    expect(faultOf(new InputError("the body must be a JSON object"))).toBe("query");
    // The replica's: a damaged file, a file that is not there, a busy or closing pool, lag, a JetStream timeout, the unforeseen.
    const corrupt = queryError({ message: "file is not a database", code: "SQLITE_NOTADB" }, caps);
    expect(corrupt).toMatchObject({ code: "VIEW_CORRUPT" });
    expect((corrupt as KappaError).hint).not.toMatch(/check the SQL/);
    expect(faultOf(corrupt)).toBe("replica");
    expect(faultOf(queryError({ message: "database disk image is malformed", code: "SQLITE_CORRUPT" }, caps))).toBe("replica");
    expect(faultOf(queryError({ message: "unable to open database file", code: "SQLITE_CANTOPEN" }, caps))).toBe("replica");
    const odd = queryError({ message: "disk I/O error", code: "SQLITE_IOERR_READ" }, caps);
    expect(faultOf(odd)).toBe("replica");
    expect((odd as KappaError).hint).not.toMatch(/check the SQL/);
    expect(faultOf(new QueryBusyError(64))).toBe("replica");
    expect(faultOf(new QueryTimeoutError(2000))).toBe("replica");
    expect(faultOf(new KappaError("MIN_SEQ_TIMEOUT", "not yet"))).toBe("replica");
    expect(faultOf(new KappaError("POOL_CLOSED", "closed"))).toBe("replica");
    expect(faultOf(new natsErrors.TimeoutError())).toBe("replica");
    expect(faultOf(new Error("something nobody foresaw"))).toBe("replica");
    // Decided by the service against the catalog, not here: without that check they are the replica's.
    expect(faultOf(new NotFoundError("orders has no version 9"))).toBe("replica");
  });

  it("a reply says whether it is final; replies of older workers (no fault) fall back to their code", () => {
    expect(isFinal({ code: "QUERY_FAILED", message: "x", worker: "w1", fault: "query" })).toBe(true);
    expect(isFinal({ code: "QUERY_FAILED", message: "x", worker: "w1", fault: "replica" })).toBe(false);
    expect(isFinal({ code: "STALE", message: "x", worker: "w1" })).toBe(false);
    expect(isFinal({ code: "QUERY_FAILED", message: "x", worker: "w1" })).toBe(true);
  });
});
