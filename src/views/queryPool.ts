import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { KappaError } from "../errors.js";
import { QueryBusyError, QueryTimeoutError, ResultTooLargeError, queryError } from "./queryErrors.js";

/** One query's answer: the sequence it reflects and its rows. */
export interface QueryResult {
  seq: number;
  rows: Record<string, unknown>[];
  columns: string[];
  truncated: boolean;
  /** Approximate size of the rows as JSON. */
  bytes: number;
  /** With `seqSchemas`: each attached view's checkpoint, read in the same snapshot as the rows. */
  seqs?: Record<string, number>;
}

/** One statement for a query process: the file, what to run, its caps and its deadline. */
export interface QueryJob {
  /** The view file, opened read-only as `main`. */
  path: string;
  /** More view files to attach read-only, by schema name (the caller chooses them, never the SQL). */
  attach?: Record<string, string>;
  /** Report the checkpoint of each of these schemas (`seqs`) instead of main's; `seq` is then the smallest. */
  seqSchemas?: string[];
  sql: string;
  params: Record<string, unknown>;
  /** The caller asked for at most this many rows: more are cut (`truncated: true`). */
  limit?: number;
  /** The cap on rows: an answer with more (and no smaller `limit`) is refused with RESULT_TOO_LARGE. */
  maxRows?: number;
  /** An answer larger than this (bytes, roughly as JSON) is refused with RESULT_TOO_LARGE. */
  maxBytes: number;
  /** When the query must be done (ms since the epoch), time in the queue included. */
  deadline: number;
  /** The whole time allowed, for the timeout message. */
  timeoutMs: number;
}

/** How many query processes, how long the queue, how much memory each may use. */
export interface QueryPoolOptions {
  /** Query processes running at once (default 2). */
  size?: number;
  /** Queries that may wait for a free process (default 64); beyond that run() refuses with QUERY_BUSY. */
  maxQueue?: number;
  /** Memory for SQLite in each query process, bytes (default 256 MiB); the kernel caps the process at this plus the JS heap and node's own (RLIMIT_DATA), so a larger value or sort fails cleanly. */
  memoryBytes?: number;
  /** Start the processes now rather than at the first query, so their start-up overlaps other work. */
  warm?: boolean;
  /** Tests only: `false` runs statements without the query process's statement-kind check, to show the checks behind it (readonly, returns rows, handle settings) hold alone. */
  statementCheck?: boolean;
}

/** What the pool is doing, for metrics and health. */
export interface QueryPoolStats {
  processes: number;
  busy: number;
  queued: number;
  /** Processes killed at a deadline since the pool started. */
  killed: number;
}

interface Slot {
  child: ChildProcess | undefined;
  job: Pending | undefined;
}

interface Pending extends QueryJob {
  id: number;
  queuedAt: number;
  startedAt?: number;
  timer?: NodeJS.Timeout;
  resolve: (r: QueryResult) => void;
  reject: (e: Error) => void;
}

const SCRIPT = fileURLToPath(new URL("./queryProcess.mjs", import.meta.url));
/**
 * On Linux, setpriv makes the kernel kill a query process when its parent dies, even mid-statement
 * (the signal follows the spawning thread, so a pool belongs on the main thread).
 */
const SETPRIV = process.platform === "linux" && existsSync("/usr/bin/setpriv") ? "/usr/bin/setpriv" : undefined;
/**
 * SQLite's own heap limit is not enforced in better-sqlite3's build (SQLITE_DEFAULT_MEMSTATUS=0), so the kernel
 * caps each query process's data memory (RLIMIT_DATA) instead: an allocation past it fails, SQLite answers
 * SQLITE_NOMEM, and a query that needs too much gets RESULT_TOO_LARGE rather than the machine's memory.
 */
const PRLIMIT = process.platform === "linux" && existsSync("/usr/bin/prlimit") ? "/usr/bin/prlimit" : undefined;
/** What node itself uses beside SQLite and the JavaScript heap (about 80 MB measured when idle), with room. */
const NODE_BASE_BYTES = 256 << 20;

/**
 * Runs read-only queries in child processes. SQLite's step cannot be interrupted from JavaScript
 * (better-sqlite3 has no interrupt or progress handler, and a worker thread's terminate() waits for
 * native code), so a query past its deadline is stopped by SIGKILLing its process; a fresh one takes its place.
 */
export class QueryPool {
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  readonly #maxQueue: number;
  readonly #memoryBytes: number;
  readonly #warm: boolean;
  readonly #statementCheck: boolean;
  #nextId = 0;
  #killed = 0;
  #closed = false;

  constructor(opts: QueryPoolOptions | number = {}) {
    const o = typeof opts === "number" ? { size: opts } : opts;
    for (let i = 0; i < Math.max(1, o.size ?? 2); i++) this.#slots.push({ child: undefined, job: undefined });
    this.#maxQueue = o.maxQueue ?? 64;
    this.#memoryBytes = o.memoryBytes ?? 256 * 1024 * 1024;
    this.#warm = o.warm === true;
    this.#statementCheck = o.statementCheck !== false;
    if (this.#warm) for (const slot of this.#slots) slot.child = this.#spawn(slot);
  }

  /** Runs one statement; rejects with QueryTimeoutError at its deadline, QueryBusyError when the queue is full. */
  run(job: QueryJob): Promise<QueryResult> {
    if (this.#closed) return Promise.reject(new KappaError("POOL_CLOSED", "query pool is closed"));
    const free = this.#slots.some((s) => !s.job);
    if (!free && this.#queue.length >= this.#maxQueue) return Promise.reject(new QueryBusyError(this.#queue.length));
    return new Promise((resolve, reject) => {
      const p: Pending = { ...job, id: this.#nextId++, queuedAt: Date.now(), resolve, reject };
      p.timer = setTimeout(() => this.#expire(p), Math.max(0, job.deadline - Date.now()));
      this.#queue.push(p);
      this.#pump();
      // Started at once: no time in the queue, even if the clock ticked in between (the timeout message says so).
      if (p.startedAt !== undefined) p.startedAt = p.queuedAt;
    });
  }

  /** Processes, busy ones, waiting queries and kills so far. */
  stats(): QueryPoolStats {
    return { processes: this.#slots.filter((s) => s.child).length, busy: this.#slots.filter((s) => s.job).length, queued: this.#queue.length, killed: this.#killed };
  }

  #pump(): void {
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return;
      if (slot.job) continue;
      this.#start(slot, this.#queue.shift()!);
    }
  }

  #spawn(slot: Slot): ChildProcess {
    const heapMb = Math.max(256, Math.ceil(this.#memoryBytes / (1 << 20)));
    const node = [process.execPath, `--max-old-space-size=${heapMb}`, SCRIPT, String(this.#memoryBytes), ...(this.#statementCheck ? [] : ["--no-statement-check"])];
    const limited = PRLIMIT ? [PRLIMIT, `--data=${this.#memoryBytes + heapMb * (1 << 20) + NODE_BASE_BYTES}`, ...node] : node;
    const argv = SETPRIV ? [SETPRIV, "--pdeathsig", "KILL", ...limited] : limited;
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "inherit", "ipc"], serialization: "advanced" });
    child.unref();
    child.channel?.unref();
    child.on("message", (msg: { id: number; ok: boolean; retire?: boolean; result?: QueryResult; error?: { message: string; code?: string; refused?: boolean } }) => {
      const p = slot.job;
      if (!p || msg.id !== p.id) return;
      if (msg.retire && slot.child === child) slot.child = undefined; // it leaves after this answer; the next query gets a fresh one
      this.#finish(slot);
      if (msg.ok) p.resolve(msg.result!);
      else p.reject(queryError(msg.error!, { maxBytes: p.maxBytes, maxRows: p.maxRows ?? 0, memoryBytes: this.#memoryBytes }));
    });
    let spawnError: Error | undefined;
    child.on("error", (err) => (spawnError = err));
    // "close", not "exit": it comes after the last message, so an answer sent just before leaving is not lost.
    child.on("close", (code, signal) => {
      if (slot.child === child) slot.child = undefined;
      const p = slot.job;
      if (!p || slot.child !== undefined) return;
      this.#finish(slot);
      if (spawnError) p.reject(new KappaError("QUERY_PROCESS", `cannot start a query process: ${spawnError.message}`, { hint: "check that node can run here (the query process is `node src/views/queryProcess.mjs`)", cause: spawnError }));
      // Died under a query it was not killed for: most likely out of memory.
      else if (signal !== null || code !== 0) p.reject(new ResultTooLargeError(this.#memoryBytes, "memory", `the query process died (${signal ?? `exit ${code}`}): the query probably needs`));
      else p.reject(new KappaError("QUERY_FAILED", "the query process left before answering", { hint: "retry the query" }));
    });
    return child;
  }

  #start(slot: Slot, p: Pending): void {
    slot.job = p;
    p.startedAt = Date.now();
    slot.child ??= this.#spawn(slot);
    slot.child.send({ id: p.id, path: p.path, attach: p.attach, seqSchemas: p.seqSchemas, sql: p.sql, params: p.params, limit: p.limit, maxRows: p.maxRows, maxBytes: p.maxBytes });
  }

  #finish(slot: Slot): void {
    const p = slot.job;
    if (p) clearTimeout(p.timer);
    slot.job = undefined;
    if (!this.#closed) this.#pump();
  }

  #expire(p: Pending): void {
    const queued = (p.startedAt ?? Date.now()) - p.queuedAt;
    const i = this.#queue.indexOf(p);
    if (i >= 0) {
      this.#queue.splice(i, 1);
      p.reject(new QueryTimeoutError(p.timeoutMs, queued));
      return;
    }
    const slot = this.#slots.find((s) => s.job === p);
    if (!slot) return;
    // The statement may be deep in native code: only killing its process stops it.
    const child = slot.child;
    slot.child = undefined;
    child?.kill("SIGKILL");
    this.#killed++;
    // A warm pool starts the replacement now, so the next query does not wait for node to start.
    if (this.#warm && !this.#closed) slot.child = this.#spawn(slot);
    this.#finish(slot);
    p.reject(new QueryTimeoutError(p.timeoutMs, queued));
  }

  /** Kills every query process and fails what is still waiting. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const p of this.#queue.splice(0)) {
      clearTimeout(p.timer);
      p.reject(new KappaError("POOL_CLOSED", "query pool is closed"));
    }
    for (const slot of this.#slots) {
      const child = slot.child;
      slot.child = undefined;
      if (slot.job) {
        clearTimeout(slot.job.timer);
        slot.job.reject(new KappaError("POOL_CLOSED", "query pool closed while the query ran"));
        slot.job = undefined;
      }
      child?.kill("SIGKILL");
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
