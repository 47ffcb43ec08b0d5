import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import { InputError, messageOf } from "../../errors.js";
import { allowsAtomic, fastIngestReplicas, appendEvents, appendFast, appendInOrder, checkId, checkSchemaVersion, ensureStream, parseEventLine, type AppendSummary, type LineOptions, type OutgoingEvent } from "../../log/index.js";
import { CliContext } from "../context.js";
import { printJson, fmtNum } from "../output.js";

interface AppendFlags {
  file?: string;
  id?: string;
  idField?: string;
  schemaVersion?: string;
}

async function* lines(path: string): AsyncGenerator<{ line: string; no: number }> {
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let no = 0;
  for await (const line of rl) {
    no++;
    if (line.trim()) yield { line, no };
  }
}

/** Files up to this size keep their checked events in memory, so each line is parsed once. */
const KEEP_PARSED_BYTES = 256 * 1024 * 1024;

/** Files with more events than this go through a fast-ingest batch; the summary lists sequences only up to here anyway. */
const FAST_FROM = 10_000;

/** The size of an --file, or an InputError saying what is wrong with the path (before NATS is even asked). */
function fileSize(path: string): number {
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new InputError(`--file ${path} is a directory`, { hint: "pass an NDJSON file, one event per line" });
    return st.size;
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(`--file ${path}: ${code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : messageOf(err)}`, {
      hint: code === "ENOENT" ? `check the path (relative to ${process.cwd()}); e.g. \`npx tsx examples/orders/generate.ts 1000 > orders.ndjson\` makes one` : "pass a readable NDJSON file",
      cause: err,
    });
  }
}

/** Checks every line first, so a bad line publishes nothing; then publishes (re-reading only very large files). */
async function appendFile(ctx: CliContext, path: string, lineOpts: LineOptions): Promise<AppendSummary> {
  const size = fileSize(path);
  const keep = size <= KEEP_PARSED_BYTES;
  const checked: OutgoingEvent[] = [];
  let count = 0;
  const text = keep ? readFileSync(path, "utf8") : undefined;
  // Lines without an id get one from the file's content and their line: a re-run after a failure repeats them.
  const opts: LineOptions = { ...lineOpts, idBase: `f${(text !== undefined ? createHash("sha256").update(text).digest("hex") : await fileDigest(path)).slice(0, 16)}` };
  if (text !== undefined) {
    // Small enough to hold: one read and a split beat readline by far.
    const all = text.split("\n");
    for (let i = 0; i < all.length; i++) {
      const line = all[i]!;
      // trim() copies the line: look for a blank one only where one could be (it also strips Unicode
      // spaces such as U+00A0 and a BOM, so only a printable ASCII first character skips it).
      const c = line.charCodeAt(0);
      if (line.length > 0 && ((c > 32 && c < 127) || line.trim())) checked.push(parseEventLine(line, i + 1, opts));
    }
    count = checked.length;
  } else {
    for await (const { line, no } of lines(path)) {
      parseEventLine(line, no, opts);
      count++;
    }
  }
  if (count === 0) throw new InputError(`no events in ${path}`, { hint: "give one JSON object per line" });
  const nc = await ctx.nats();
  const jsm = await ensureStream(nc, ctx.spec);
  // A fast-ingest batch keeps the file's order across a NATS drop at the speed of plain publishes (nats-server
  // 2.14+); small files keep atomic batches, whose acks list every event's sequence.
  const replicas = keep && count > FAST_FROM ? await fastIngestReplicas(nc, jsm, ctx.spec.stream) : null;
  if (replicas !== null) return appendFast(nc, ctx.spec, checked, { replicas });
  // Atomic batches, one at a time, keep the file's order across a NATS drop (nats-server 2.12+).
  const append = (await allowsAtomic(jsm, ctx.spec.stream)) ? appendInOrder : appendEvents;
  if (keep) return append(nc, ctx.spec, checked);
  async function* events(): AsyncGenerator<OutgoingEvent> {
    for await (const { line, no } of lines(path)) yield parseEventLine(line, no, opts);
  }
  return append(nc, ctx.spec, events());
}

/** SHA-256 of a file, read as a stream (files too large to hold). */
async function fileDigest(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** Runs `kappa append`. */
export async function runAppend(ctx: CliContext, type: string | undefined, json: string | undefined, flags: AppendFlags): Promise<AppendSummary> {
  if (flags.id !== undefined && (flags.file || !json)) throw new InputError("--id applies to a single event given as an argument", { hint: "for files, use --id-field or an `id` in each envelope" });
  if (flags.file) fileSize(flags.file);
  const nc = await ctx.nats();
  const opts: LineOptions = {
    ...(type ? { type } : {}),
    ...(flags.idField ? { idField: flags.idField } : {}),
    ...(flags.schemaVersion !== undefined ? { schemaVersion: checkSchemaVersion(flags.schemaVersion, "--schema-version") } : {}),
    maxBytes: nc.info?.max_payload ?? 1024 * 1024 };
  if (json !== undefined) {
    if (!type) throw new InputError("give the event type before its JSON", { hint: "kappa append order.placed '{\"user\":\"u1\"}'" });
    if (flags.id !== undefined) checkId(flags.id, "", "--id");
    const ev = parseEventLine(json, 1, { ...opts, ...(flags.id !== undefined ? { id: flags.id } : {}) });
    await ensureStream(nc, ctx.spec);
    return appendEvents(nc, ctx.spec, [ev]);
  }
  if (flags.file) return appendFile(ctx, flags.file, opts);
  if (process.stdin.isTTY) throw new InputError("nothing to append", { hint: "give the event as JSON, --file x.ndjson, or pipe NDJSON on stdin" });
  const dir = mkdtempSync(join(tmpdir(), "kappa-stdin-"));
  try {
    const tmp = join(dir, "stdin.ndjson");
    await pipeline(process.stdin, createWriteStream(tmp));
    return await appendFile(ctx, tmp, opts);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function registerAppend(program: Command): void {
  program
    .command("append")
    .description("append one event (type and JSON), or many from --file or stdin (one data object, or {type,data,id} envelope, per line)")
    .argument("[type]", "event type, e.g. order.placed (omit when lines are envelopes)")
    .argument("[json]", "the event's data as a JSON object")
    .option("--file <path>", "NDJSON file of events")
    .option("--id <key>", "idempotency key (Nats-Msg-Id) of a single event")
    .option("--id-field <field>", "take each event's idempotency key from this data field (dots for nested)")
    .option("--schema-version <n>", "schema version of the events' type (default 1; an envelope's `schemaVersion` wins)")
    .action(async (type: string | undefined, json: string | undefined, flags: AppendFlags, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      try {
        const s = await runAppend(ctx, type, json, flags);
        if (ctx.json) printJson(s.count === 1 ? { seq: s.firstSeq, duplicate: s.duplicates === 1 } : s);
        else if (s.count === 1) console.log(s.duplicates ? `duplicate: already stored at seq ${s.firstSeq}` : `appended at seq ${s.firstSeq}`);
        else console.log(`appended ${fmtNum(s.stored)} events, seq ${s.firstSeq}–${s.lastSeq}${s.duplicates ? ` (${fmtNum(s.duplicates)} duplicates skipped)` : ""}`);
      } finally {
        await ctx.close();
      }
    });
}
