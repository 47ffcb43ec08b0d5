import { InputError } from "../../errors.js";
import { parseVersion, remoteQuery, type RemoteAnswer } from "../../views/index.js";
import type { CliContext } from "../context.js";
import { printJson } from "../output.js";
import { rowCaps, timeoutMsOf } from "../queryFlags.js";

/** The flags of `kappa query` that a remote query uses. */
export interface RemoteQueryFlags {
  version?: string;
  minSeq?: string;
  maxStaleness?: string;
  timeout: string;
  limit?: string;
  maxRows: string;
  format?: string;
}

function wholeNumber(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InputError(`${flag} ${v} is not a whole number`, { hint: `e.g. ${flag} 100` });
  return n;
}

/** The help text of --max-staleness, shared by `kappa query --remote` and `kappa serve --remote`. */
export const MAX_STALENESS_HELP =
  "with --remote: how stale an answer may be — a number of events behind the log's head, or `any` for any replica at any lag (default: only a replica that has applied what the most advanced replica last reported)";

/** Parses --max-staleness: a whole number of events, or `any`. */
export function parseMaxStaleness(v: string | undefined): number | "any" | undefined {
  if (v === undefined) return undefined;
  if (v.trim().toLowerCase() === "any") return "any";
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new InputError(`--max-staleness ${v} is neither a whole number of events nor \`any\``, { hint: "e.g. --max-staleness 100, or --max-staleness any to accept any replica at any lag" });
  return n;
}

/** `kappa query --remote`: the query goes over NATS to a worker holding the view; any replica within the staleness bound may answer. */
export async function runRemoteQuery(ctx: CliContext, processor: string, sql: string, params: Record<string, unknown>, flags: RemoteQueryFlags, render: (a: RemoteAnswer, format: string) => string): Promise<void> {
  const timeoutMs = timeoutMsOf(flags.timeout);
  const rows = rowCaps(flags);
  const minSeq = wholeNumber("--min-seq", flags.minSeq);
  const maxStaleness = parseMaxStaleness(flags.maxStaleness);
  try {
    const nc = await ctx.nats({ timeoutMs: 2000 });
    const a = await remoteQuery(nc, ctx.spec.stream, processor, {
      sql,
      params,
      ...(flags.version ? { version: parseVersion(flags.version) } : {}),
      ...(minSeq !== undefined ? { minSeq } : {}),
      ...(maxStaleness !== undefined ? { maxStaleness } : {}),
      timeoutMs,
      ...rows,
    });
    if (ctx.json && !flags.format) {
      printJson({ processor: a.processor, version: a.version, seq: a.seq, worker: a.worker, rows: a.rows, ...(a.truncated ? { truncated: true } : {}) });
    } else {
      console.log(render(a, flags.format ?? "table"));
    }
    if (!ctx.json && (flags.format ?? "table") === "table") {
      process.stderr.write(`${a.rows.length} row${a.rows.length === 1 ? "" : "s"} from ${processor} v${a.version} at seq ${a.seq}, answered by ${a.worker}${a.truncated ? ` (cut at --limit ${rows.limit})` : ""}\n`);
    }
  } finally {
    await ctx.close();
  }
}
