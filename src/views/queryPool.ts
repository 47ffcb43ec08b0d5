import { Worker } from "node:worker_threads";
import { KappaError, InputError } from "../errors.js";

/** One query's answer: the sequence it reflects and its rows. */
export interface QueryResult {
  seq: number;
  rows: Record<string, unknown>[];
  columns: string[];
  truncated: boolean;
}

/** A query ran past its time limit and was stopped. */
export class QueryTimeoutError extends KappaError {
  constructor(ms: number) {
    super("QUERY_TIMEOUT", `query stopped after ${ms} ms`, { hint: "add a LIMIT or a WHERE, or raise --timeout" });
  }
}

interface Slot {
  worker: Worker;
  busy: boolean;
}

interface Job {
  path: string;
  sql: string;
  params: Record<string, unknown>;
  limit: number;
  timeoutMs: number;
  resolve: (r: QueryResult) => void;
  reject: (e: Error) => void;
}

const THREAD = new URL("./queryThread.mjs", import.meta.url);

/**
 * Worker threads that run read-only queries. better-sqlite3 cannot interrupt a statement
 * on its own thread, so a query past its deadline is stopped by terminating its thread.
 */
export class QueryPool {
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  readonly #size: number;
  #nextId = 0;
  #closed = false;

  constructor(size = 2) {
    this.#size = size;
  }

  /** Runs one query on a view file; rejects with QueryTimeoutError after `timeoutMs`. */
  run(path: string, sql: string, params: Record<string, unknown>, opts: { limit: number; timeoutMs: number }): Promise<QueryResult> {
    if (this.#closed) return Promise.reject(new KappaError("POOL_CLOSED", "query pool is closed"));
    return new Promise((resolve, reject) => {
      this.#queue.push({ path, sql, params, limit: opts.limit, timeoutMs: opts.timeoutMs, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      let slot = this.#slots.find((s) => !s.busy);
      if (!slot && this.#slots.length < this.#size) {
        slot = { worker: new Worker(THREAD), busy: false };
        slot.worker.unref();
        this.#slots.push(slot);
      }
      if (!slot) return;
      this.#start(slot, this.#queue.shift()!);
    }
  }

  #start(slot: Slot, job: Job): void {
    slot.busy = true;
    const id = this.#nextId++;
    const done = () => {
      clearTimeout(timer);
      slot.worker.off("message", onMessage);
      slot.worker.off("error", onError);
      slot.busy = false;
      this.#pump();
    };
    const onMessage = (msg: { id: number; ok: boolean; result?: QueryResult; error?: { message: string; code?: string; refused?: boolean } }) => {
      if (msg.id !== id) return;
      done();
      if (msg.ok) job.resolve(msg.result!);
      else job.reject(queryError(msg.error!));
    };
    const onError = (err: Error) => {
      this.#replace(slot);
      done();
      job.reject(err);
    };
    const timer = setTimeout(() => {
      this.#replace(slot);
      done();
      job.reject(new QueryTimeoutError(job.timeoutMs));
    }, job.timeoutMs);
    slot.worker.on("message", onMessage);
    slot.worker.on("error", onError);
    slot.worker.postMessage({ id, path: job.path, sql: job.sql, params: job.params, limit: job.limit });
  }

  #replace(slot: Slot): void {
    void slot.worker.terminate();
    slot.worker = new Worker(THREAD);
    slot.worker.unref();
  }

  /** Stops every thread. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }
}

function queryError(e: { message: string; code?: string; refused?: boolean }): Error {
  if (e.refused || e.code === "SQLITE_READONLY") return new InputError(`query refused: ${e.message}`, { hint: "queries are read-only", code: "QUERY_REFUSED" });
  if (e.code === "SQLITE_CANTOPEN") return new KappaError("VIEW_MISSING", `view file is missing: ${e.message}`, { hint: "the worker has not built it in this data dir yet (is `kappa run` running with the same --data-dir?)" });
  if (/no such table|no such column|syntax error|parameter|incomplete input|no such function|more than one statement|ambiguous column/i.test(e.message)) {
    return new InputError(`query failed: ${e.message}`, { hint: "check the SQL; list tables with SELECT name FROM sqlite_schema", code: "QUERY_FAILED" });
  }
  return new KappaError("QUERY_FAILED", `query failed: ${e.message}`, { hint: "check the SQL and retry" });
}
