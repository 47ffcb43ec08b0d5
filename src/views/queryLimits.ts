/** Default cap on the bytes of one answer. */
export const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
/** Default cap on the rows of one answer: more is an error, not a silent cut. */
export const DEFAULT_MAX_ROWS = 100_000;

/** What bounds a query, one view or several: its parameters, the read-your-writes wait, the time and the size of the answer. */
export interface QueryLimits {
  params?: Record<string, unknown>;
  /** Wait until the version (with several views: every one) has applied this sequence (read-your-writes). */
  minSeq?: number;
  /** The whole time allowed (default 5 s), counted from `arrivedAt`: the --min-seq wait and the queue included. */
  timeoutMs?: number;
  /** When the request arrived (ms since the epoch; default now). */
  arrivedAt?: number;
  /** The first this many rows, the rest cut with `truncated: true` (default: no cut). */
  limit?: number;
  /** More rows than this (with no smaller `limit`) are refused with RESULT_TOO_LARGE (default 100,000). */
  maxRows?: number;
  /** Answers larger than this many bytes (roughly, as JSON) are refused with RESULT_TOO_LARGE (default 16 MiB). */
  maxBytes?: number;
}

/** The time a query may take and the instant it must end by. */
export function queryDeadline(req: QueryLimits): { timeoutMs: number; deadline: number } {
  const timeoutMs = req.timeoutMs ?? 5000;
  return { timeoutMs, deadline: (req.arrivedAt ?? Date.now()) + timeoutMs };
}

/** The answer caps handed to the query process, defaults filled in. */
export function answerCaps(req: QueryLimits): { limit?: number; maxRows: number; maxBytes: number } {
  return { ...(req.limit !== undefined ? { limit: req.limit } : {}), maxRows: req.maxRows ?? DEFAULT_MAX_ROWS, maxBytes: req.maxBytes ?? DEFAULT_MAX_BYTES };
}
