import type { Command } from "commander";
import { InputError } from "../../errors.js";
import { exportView, parseExportFormat, parseVersion } from "../../views/index.js";
import { CliContext } from "../context.js";
import { recordSource } from "../records.js";
import { fmtNum, printJson } from "../output.js";

interface ExportFlags {
  version?: string;
  format?: string;
  out?: string;
  table?: string;
  csvRaw?: boolean;
}

/** `kappa export`: one consistent snapshot of a view as CSV, NDJSON or Parquet, for analytics tools. */
export function registerExport(program: Command): void {
  program
    .command("export")
    .description("write one consistent snapshot of a view (every table, or --table) as csv, ndjson or parquet, with its version and sequence in the file's metadata")
    .argument("<processor>")
    .option("--version <n>", "export this version instead of the live one")
    .option("--format <format>", "csv, ndjson or parquet")
    .option("--out <path>", "the file to write (a directory when several tables are exported)")
    .option("--table <name>", "only this table")
    .option("--csv-raw", "with --format csv: write text as it is, also text a spreadsheet would run as a formula (by default =, +, -, @ first get a leading ')")
    .action(async (processor: string, flags: ExportFlags, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      try {
        if (!flags.format) throw new InputError("--format is required", { hint: "--format csv, ndjson or parquet" });
        if (!flags.out) throw new InputError("--out is required", { hint: `e.g. --out ${processor}.${flags.format}` });
        let fallback: string | undefined;
        const r = await exportView(ctx.dataDir, recordSource(ctx, (why) => (fallback = why)), {
          processor,
          format: parseExportFormat(flags.format),
          out: flags.out,
          stream: ctx.spec.stream,
          ...(flags.version ? { version: parseVersion(flags.version) } : {}),
          ...(flags.table ? { table: flags.table } : {}),
          ...(flags.csvRaw ? { csvRaw: true } : {}),
        });
        if (ctx.json) return printJson(r);
        for (const t of r.tables) console.log(`${t.file}: ${fmtNum(t.rows)} rows of ${t.table}${t.prefixed ? ` (${fmtNum(t.prefixed)} text cells that a spreadsheet would run as formulas start with ' — --csv-raw keeps them as they are)` : ""}`);
        console.log(`${processor} v${r.version} at seq ${r.seq}${r.metadataFile ? ` (metadata in ${r.metadataFile})` : r.format === "parquet" ? " (in the Parquet key-value metadata)" : ""}${fallback ? " (NATS unreachable: used the local catalog copy)" : ""}`);
      } finally {
        await ctx.close();
      }
    });
}
