import type { Command } from "commander";
import { InputError, UnavailableError } from "../../errors.js";
import { shortfallWarning } from "../../processors/index.js";
import { CliContext } from "../context.js";
import { CheckpointRates } from "../http/rates.js";
import { gatherStatus, type StatusReport, type VersionStatus } from "../status.js";
import { printJson, renderTable, fmtNum, fmtEta } from "../output.js";

/** Renders a status report for people. */
export function renderStatus(r: StatusReport): string {
  const lines: string[] = [];
  if (r.nats === "unreachable") lines.push(`NATS is unreachable (${r.natsError}) — showing the local copy of the catalog; queries still answer from SQLite.`);
  else lines.push(`log head: ${fmtNum(r.logHead)}`);
  if (r.logUnsafe) lines.push(`WARNING: the log is not append-only — it ${r.logUnsafe.join(", ")} (used with --allow-unsafe-log); events lost from it fail the versions that miss them`);
  const short = shortfallWarning(r.replicaShortfalls ?? []);
  if (short) lines.push(`WARNING: ${short.message}`, `  hint: ${short.hint}`);
  if (r.processors.length === 0) lines.push("no processors deployed yet — `kappa deploy <module>`");
  for (const p of r.processors) {
    lines.push("", `${p.name}  (live: ${p.live === null ? "none yet" : `v${p.live}`})`);
    lines.push(renderTable(
      ["", "version", "state", "checkpoint", "lag", "events/s", "eta", "from", "code", "note"],
      p.versions.map((v) => [
        v.live ? "*" : "",
        `v${v.version}`,
        stateText(v),
        fmtNum(v.checkpoint),
        fmtNum(v.lag),
        v.eventsPerSec === null ? "-" : fmtNum(v.eventsPerSec),
        v.state === "building" ? fmtEta(v.etaSeconds) : "",
        v.from,
        v.codeHash,
        [v.error, v.writer && (v.replicas?.length ?? 0) > 1 ? `writer ${v.writer}` : "", v.source ? `source ${v.source}${v.sourceLive === false ? " (no longer live: replay to follow the new one)" : ""}` : ""].filter(Boolean).join("; "),
      ]),
    ));
  }
  const schema = r.processors.flatMap((p) => p.versions.filter((v) => v.state !== "retired").flatMap((v) => (v.schemaWarnings ?? []).map((w) => `warning: ${p.name} v${v.version}: ${w.message}`)));
  if (schema.length) lines.push("", ...schema);
  if (r.workers.length > 1 || r.workers.some((w) => w.silent)) lines.push("", renderWorkers(r));
  return lines.join("\n");
}

/** The workers section: each worker, when it last reported, and what it holds (writer marked). */
function renderWorkers(r: StatusReport): string {
  const now = Date.now();
  return "workers\n" + renderTable(
    ["worker", "state", "last seen", "holds"],
    r.workers.map((w) => [
      w.worker,
      w.silent ? "SILENT" : "ok",
      `${((now - Date.parse(w.lastSeen)) / 1000).toFixed(1)} s ago`,
      w.versions.map((h) => `${h.processor} v${h.version}${h.writer && !w.silent ? " (writer)" : ""} @${h.checkpoint}`).join(", ") || (w.processors ? `(placed: ${w.processors.join(",")})` : "-"),
    ]),
  );
}

/** A frozen version shows where it stopped: `frozen at 1500`, `live (frozen at 1500)`, `building (until 1500)`. */
function stateText(v: VersionStatus): string {
  if (v.frozenAt === undefined) return v.state;
  if (v.state === "caught-up") return `frozen at ${v.frozenAt}`;
  if (v.state === "building") return `building (until ${v.frozenAt})`;
  return `${v.state} (frozen at ${v.frozenAt})`;
}

/** The one-line reason when there is nothing to show: NATS is down and no worker ever ran on this data dir. */
function unreachable(ctx: CliContext, r: StatusReport): UnavailableError {
  return new UnavailableError("NATS_UNREACHABLE", `NATS is not reachable at ${ctx.natsUrl} (${(r.natsError ?? "no answer").replace(/^cannot reach NATS at \S+: /, "")}), and ${ctx.dataDir.root} has no copy of the catalog`, {
    hint: "start `npx kappa dev` in another terminal (or pass --nats <url> of a running server, and the --data-dir the worker uses)",
  });
}

/** One plain line per version, for a pipe or a log file: time, processor, version and its figures. */
export function plainStatusLines(r: StatusReport, at = new Date()): string[] {
  const t = at.toISOString().slice(11, 19);
  if (r.nats === "unreachable" && r.catalogCopy === false) return [`${t} NATS unreachable (${r.natsError}); no local catalog copy`];
  const head = `${t} log head ${r.logHead ?? "-"}${r.nats === "unreachable" ? " (NATS unreachable: local copy)" : ""}`;
  return [head, ...r.processors.flatMap((p) => p.versions.filter((v) => v.state !== "retired").map((v) =>
    `${t} ${p.name} v${v.version}${v.live ? "*" : ""} ${v.state} checkpoint=${v.checkpoint ?? "-"} lag=${v.lag ?? "-"} eps=${v.eventsPerSec ?? "-"}${v.state === "building" && v.etaSeconds !== null ? ` eta=${fmtEta(v.etaSeconds)}` : ""}${v.error ? ` error="${v.error}"` : ""}`))];
}

/**
 * `--watch`: on a terminal the table is redrawn in place every interval (cursor home, clear below);
 * otherwise plain lines are appended, so a pipe or a log file reads well. `--json` writes one report per
 * line. Stops on Ctrl-C or SIGTERM, exit code 0.
 */
async function watch(ctx: CliContext, processor: string | undefined, intervalMs: number): Promise<void> {
  const tty = process.stdout.isTTY === true && !ctx.json;
  let stop = false;
  let wake: (() => void) | undefined;
  const onSignal = () => {
    stop = true;
    wake?.();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const rates = new CheckpointRates();
  if (tty) process.stdout.write("\x1b[?25l"); // hide the cursor while redrawing
  try {
    while (!stop) {
      const r = await gatherStatus(ctx, processor, rates);
      if (ctx.json) process.stdout.write(JSON.stringify({ at: new Date().toISOString(), ...r }) + "\n");
      else if (tty) {
        const body = r.nats === "unreachable" && r.catalogCopy === false ? `kappa: ${unreachable(ctx, r).message}\n  hint: ${unreachable(ctx, r).hint}` : renderStatus(r);
        process.stdout.write(`\x1b[H\x1b[J${body}\n\nevery ${intervalMs / 1000}s · ${new Date().toLocaleTimeString()} · Ctrl-C stops\n`);
      } else process.stdout.write(plainStatusLines(r).join("\n") + "\n");
      await new Promise<void>((res) => {
        wake = res;
        setTimeout(res, intervalMs).unref();
      });
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (tty) process.stdout.write("\x1b[?25h");
  }
}

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("every version: state, checkpoint, log head, lag, events/s, which one is live")
    .argument("[processor]")
    .option("--watch [seconds]", "redraw every second (or every <seconds>) until Ctrl-C: in place on a terminal, plain lines otherwise")
    .action(async (processor: string | undefined, o: { watch?: string | boolean }, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      try {
        if (o.watch !== undefined) {
          const seconds = o.watch === true ? 1 : Number(o.watch);
          if (!(seconds >= 0.2 && seconds <= 3600)) throw new InputError(`--watch ${String(o.watch)} is not a number of seconds from 0.2 to 3600`, { hint: "e.g. --watch, or --watch 5" });
          return await watch(ctx, processor, seconds * 1000);
        }
        const r = await gatherStatus(ctx, processor);
        if (r.nats === "unreachable" && r.catalogCopy === false) throw unreachable(ctx, r);
        if (ctx.json) printJson(r);
        else console.log(renderStatus(r));
      } finally {
        await ctx.close();
      }
    });
}
