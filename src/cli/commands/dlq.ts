import Database from "better-sqlite3";
import type { Command } from "commander";
import { KappaError } from "../../errors.js";
import { parseVersion, readLeased, targetVersion, type DataDir, type RecordSource } from "../../views/index.js";
import { CliContext } from "../context.js";
import { recordSource } from "../records.js";
import { positiveInt } from "../flags.js";
import { printJson, renderTable } from "../output.js";

/** One dead letter: an event a processor with onError "skip" could not apply. */
export interface DeadLetter {
  seq: number;
  type: string;
  time: string;
  id: string;
  data: string;
  error: string;
}

/** Reads a version's dead-letter table. */
export function readDeadLetters(path: string, limit: number): DeadLetter[] {
  let db;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new KappaError("VIEW_MISSING", `view file ${path} not found`, { hint: "run where the worker keeps its files (--data-dir)", cause: err });
  }
  try {
    const rows = db.prepare("SELECT seq, type, time, id, data, error FROM kappa_dead_letters ORDER BY seq LIMIT ?").all(limit) as (Omit<DeadLetter, "data"> & { data: Buffer })[];
    return rows.map((r) => ({ ...r, data: r.data.toString("utf8") }));
  } finally {
    db.close();
  }
}

/**
 * A version's dead letters (the live one unless `version` is given), read under a reader lease like a
 * query: the worker cannot delete the file mid-read, and a live version retired between resolving and
 * opening is resolved again.
 */
export async function deadLettersOf(dataDir: DataDir, records: RecordSource, processor: string, opts: { version?: number; limit: number }): Promise<{ version: number; deadLetters: DeadLetter[] }> {
  const plan = {
    live: opts.version === undefined,
    deadline: Date.now() + 30_000,
    pick: async () => {
      const rec = await records(processor);
      if (!rec) throw new KappaError("NOT_FOUND", `processor ${processor} is not deployed`, { hint: "`kappa status` lists what exists" });
      const version = targetVersion(rec, opts.version);
      return [{ processor, version, path: dataDir.viewFile(processor, version) }];
    },
  };
  return readLeased(dataDir, plan, async ([p]) => ({ version: p!.version, deadLetters: readDeadLetters(p!.path, opts.limit) }));
}

export function registerDlq(program: Command): void {
  program
    .command("dlq")
    .description("list the events a version skipped (onError: \"skip\"), with their errors")
    .argument("<processor>")
    .option("--version <n>", "another version than the live one")
    .option("--limit <n>", "at most this many", "1000")
    .action(async (processor: string, o: { version?: string; limit: string }, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      try {
        const { version, deadLetters: rows } = await deadLettersOf(ctx.dataDir, recordSource(ctx), processor, { ...(o.version ? { version: parseVersion(o.version) } : {}), limit: positiveInt("--limit", o.limit) });
        if (ctx.json) printJson({ processor, version, deadLetters: rows });
        else if (rows.length === 0) console.log(`${processor} v${version}: no dead letters`);
        else console.log(renderTable(["seq", "type", "time", "error", "data"], rows.map((r) => [r.seq, r.type, r.time, r.error, r.data.slice(0, 80)])));
      } finally {
        await ctx.close();
      }
    });
}
