import type { Command } from "commander";
import { InputError } from "../errors.js";
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS } from "../views/index.js";
import type { HttpServerOptions } from "./http/index.js";

/** Parses a positive integer flag, with the flag's name in the error. */
export function positiveInt(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw new InputError(`${flag} ${text} is not a positive integer`, { hint: `e.g. ${flag} 4` });
  return n;
}

/** The query server's caps, as flags. */
export interface QueryCapFlags {
  queryProcesses: string;
  queryQueue: string;
  maxResultBytes: string;
  maxResultRows: string;
  queryMemory?: string;
  maxEventStreams: string;
}

/** Adds the query server's caps to a command that serves (`kappa serve`, `kappa dev`). */
export function withQueryCapFlags(cmd: Command): Command {
  return cmd
    .option("--query-processes <n>", "queries running at once, each in its own process (killed at its timeout)", "2")
    .option("--query-queue <n>", "queries that may wait for a free process; beyond that: 503 with Retry-After", "64")
    .option("--max-result-bytes <n>", "cap on one answer's size in bytes (larger answers get RESULT_TOO_LARGE)", String(DEFAULT_MAX_BYTES))
    .option("--max-result-rows <n>", "cap on one answer's rows (more get RESULT_TOO_LARGE; a request's limit asks for fewer, cut)", String(DEFAULT_MAX_ROWS))
    .option("--query-memory <bytes>", "SQLite memory cap of each query process (default: 256 MiB or 4x --max-result-bytes)")
    .option("--max-event-streams <n>", "open event streams (change streams and status pages) at most; beyond that: 503 with Retry-After", "100");
}

/** The caps from those flags, checked, as server options. */
export function queryCapOptions(f: QueryCapFlags): Partial<HttpServerOptions> {
  return {
    queryProcesses: positiveInt("--query-processes", f.queryProcesses),
    queryQueue: positiveInt("--query-queue", f.queryQueue),
    maxResultBytes: positiveInt("--max-result-bytes", f.maxResultBytes),
    maxResultRows: positiveInt("--max-result-rows", f.maxResultRows),
    ...(f.queryMemory !== undefined ? { queryMemoryBytes: positiveInt("--query-memory", f.queryMemory) } : {}),
    maxEventStreams: positiveInt("--max-event-streams", f.maxEventStreams),
  };
}
