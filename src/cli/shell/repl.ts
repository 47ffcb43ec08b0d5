import { readFileSync, writeFileSync } from "node:fs";
import { createInterface, type Interface } from "node:readline";
import { KappaError, messageOf } from "../../errors.js";
import { renderAnswer, renderTable } from "../output.js";
import type { ShellSession, ShellTable } from "./session.js";

/** How results print: the sqlite3 habit's modes. */
export type ShellMode = "table" | "json" | "csv" | "ndjson";

const DOT = [".tables", ".schema", ".versions", ".mode", ".timer", ".refresh", ".help", ".quit", ".exit"];
const KEYWORDS = ["SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "LIMIT", "JOIN", "USING", "WITH", "COUNT(*)", "DISTINCT"];
const HELP = `.tables              tables of the attached views
.schema [table]      their CREATE statements
.versions            each view's live version and sequence
.mode table|json|csv|ndjson
.timer on|off        time each statement
.refresh             re-read which views are live and their tables
.quit                leave (or Ctrl-D)
Statements end with ";" and may span lines. Queries are read-only.`;

/** Completes dot-commands, table names (plain and schema-qualified) and a few keywords for the word being typed. */
export function completer(tables: ShellTable[]): (line: string) => [string[], string] {
  return (line) => {
    if (/^\s*\.\w*$/.test(line)) {
      const w = line.trim();
      return [DOT.filter((d) => d.startsWith(w)), w];
    }
    const word = /[\w."]*$/.exec(line)?.[0] ?? "";
    const names = [...new Set(tables.flatMap((t) => [t.name, `${t.schema}.${t.name}`])), ...KEYWORDS];
    const hits = names.filter((n) => n.toLowerCase().startsWith(word.toLowerCase()));
    return [hits.length ? hits : [], word];
  };
}

/** Reads the saved history, most recent first, as readline keeps it. */
function loadHistory(file: string): string[] {
  try {
    return readFileSync(file, "utf8").split("\n").filter(Boolean).reverse().slice(0, 1000);
  } catch {
    return [];
  }
}

/** The interactive loop: statements end with `;`, dot-commands act at once, errors print and the shell goes on. */
export async function runRepl(session: ShellSession, io: { historyFile: string; interactive: boolean }): Promise<void> {
  let mode: ShellMode = "table";
  let timer = false;
  let buffer = "";
  const rl: Interface = createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: io.interactive,
    completer: (line: string) => completer(session.tables)(line),
    history: io.interactive ? loadHistory(io.historyFile) : [],
    historySize: 1000,
  });
  const prompt = () => {
    if (!io.interactive) return;
    rl.setPrompt(buffer ? "   ...> " : "kappa> ");
    rl.prompt();
  };
  const out = (s: string) => process.stdout.write(s.endsWith("\n") ? s : s + "\n");
  const fail = (err: unknown) => {
    process.stderr.write(`error: ${messageOf(err)}\n`);
    if (err instanceof KappaError && err.hint) process.stderr.write(`hint: ${err.hint}\n`);
  };

  const dot = async (line: string): Promise<boolean> => {
    const [cmd, ...args] = line.trim().split(/\s+/);
    switch (cmd) {
      case ".quit":
      case ".exit":
        return false;
      case ".help":
        out(HELP);
        break;
      case ".tables":
        out(session.tables.map((t) => (session.processor ? t.name : `${t.schema}.${t.name}`)).join("\n") || "(no tables)");
        break;
      case ".schema": {
        const want = args[0];
        const picked = session.tables.filter((t) => !want || t.name === want || `${t.schema}.${t.name}` === want);
        if (want && picked.length === 0) throw new KappaError("NOT_FOUND", `no table ${want}`, { hint: "`.tables` lists them" });
        out(picked.map((t) => `${t.sql};${session.processor ? "" : `  -- in ${t.schema}`}`).join("\n"));
        break;
      }
      case ".versions": {
        const v = await session.versions();
        out(renderTable(["processor", "live", "seq", "state"], v.map((x) => [x.processor, x.version === null ? "-" : `v${x.version}`, x.seq ?? "-", x.state])));
        break;
      }
      case ".mode":
        if (!["table", "json", "csv", "ndjson"].includes(args[0] ?? "")) throw new KappaError("BAD_INPUT", `unknown mode ${args[0] ?? "(none)"}`, { hint: ".mode table|json|csv|ndjson" });
        mode = args[0] as ShellMode;
        break;
      case ".timer":
        if (args[0] !== "on" && args[0] !== "off") throw new KappaError("BAD_INPUT", "say .timer on or .timer off");
        timer = args[0] === "on";
        break;
      case ".refresh":
        await session.refresh();
        out(`${session.tables.length} tables in ${session.views.map((v) => v.processor).join(", ")}`);
        break;
      default:
        throw new KappaError("BAD_INPUT", `unknown command ${cmd}`, { hint: "`.help` lists the commands" });
    }
    return true;
  };

  const statement = async (sql: string) => {
    const t0 = performance.now();
    const a = await session.run(sql.replace(/;\s*$/, ""));
    out(renderAnswer(a, mode));
    if (a.truncated) process.stderr.write(`note: rows cut at 10,000\n`);
    if (timer) out(`Run Time: ${(performance.now() - t0).toFixed(1)} ms (${a.views.map((v) => `${v.processor} v${v.version} at seq ${v.seq}`).join(", ")})`);
  };

  rl.on("SIGINT", () => {
    // Ctrl-C drops the statement being typed, as sqlite3 does; Ctrl-D leaves.
    buffer = "";
    process.stdout.write("\n");
    prompt();
  });
  prompt();
  try {
    for await (const line of rl) {
      try {
        if (!buffer && line.trim().startsWith(".")) {
          if (!(await dot(line))) break;
        } else if (line.trim() || buffer) {
          buffer += (buffer ? "\n" : "") + line;
          if (/;\s*$/.test(buffer)) {
            const sql = buffer;
            buffer = "";
            await statement(sql);
          }
        }
      } catch (err) {
        buffer = "";
        fail(err);
      }
      prompt();
    }
    if (buffer.trim()) await statement(buffer).catch(fail); // a last statement without its ";"
  } finally {
    if (io.interactive) {
      const hist = (rl as unknown as { history: string[] }).history ?? [];
      try {
        writeFileSync(io.historyFile, [...hist].reverse().join("\n") + "\n");
      } catch {
        // history is a convenience: a read-only data dir must not fail the shell
      }
    }
    rl.close();
  }
}
