import type { Command } from "commander";
import { CliContext } from "../context.js";
import { gatherStatus, type StatusReport, type VersionStatus } from "../status.js";
import { printJson, renderTable, fmtNum, fmtEta } from "../output.js";

/** Renders a status report for people. */
export function renderStatus(r: StatusReport): string {
  const lines: string[] = [];
  if (r.nats === "unreachable") lines.push(`NATS is unreachable (${r.natsError}) — showing the local copy of the catalog; queries still answer from SQLite.`);
  else lines.push(`log head: ${fmtNum(r.logHead)}`);
  if (r.logUnsafe) lines.push(`WARNING: the log is not append-only — it ${r.logUnsafe.join(", ")} (used with --allow-unsafe-log); events lost from it fail the versions that miss them`);
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
        [v.error, v.source ? `source ${v.source}${v.sourceLive === false ? " (no longer live: replay to follow the new one)" : ""}` : ""].filter(Boolean).join("; "),
      ]),
    ));
  }
  return lines.join("\n");
}

/** A frozen version shows where it stopped: `frozen at 1500`, `live (frozen at 1500)`, `building (until 1500)`. */
function stateText(v: VersionStatus): string {
  if (v.frozenAt === undefined) return v.state;
  if (v.state === "caught-up") return `frozen at ${v.frozenAt}`;
  if (v.state === "building") return `building (until ${v.frozenAt})`;
  return `${v.state} (frozen at ${v.frozenAt})`;
}

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("every version: state, checkpoint, log head, lag, events/s, which one is live")
    .argument("[processor]")
    .action(async (processor: string | undefined, _o, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      try {
        const r = await gatherStatus(ctx, processor);
        if (ctx.json) printJson(r);
        else console.log(renderStatus(r));
      } finally {
        await ctx.close();
      }
    });
}
