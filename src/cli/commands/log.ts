import type { Command } from "commander";
import { jetstream } from "@nats-io/jetstream";
import { logInfo, logTypes, parseOffset, readBatches, wrapJsError, firstSeqAtOrAfter, type LogInfo } from "../../log/index.js";
import { jetstreamManager } from "@nats-io/jetstream";
import { InputError } from "../../errors.js";
import { CliContext } from "../context.js";
import { printJson, fmtNum, renderTable } from "../output.js";
import { registerLogReplicas } from "./replicas.js";

/** An example's JSON, cut to fit a table cell. */
function exampleText(v: unknown, max = 70): string {
  const t = JSON.stringify(v);
  return t.length > max ? t.slice(0, max - 1) + "…" : t;
}

/** `kappa log info`. */
export async function runLogInfo(ctx: CliContext): Promise<LogInfo> {
  const nc = await ctx.nats();
  return logInfo(await jetstreamManager(nc), ctx.spec.stream);
}

/** `kappa log tail`: NDJSON of the raw log from an offset; with follow, until interrupted. */
export async function runLogTail(ctx: CliContext, from: string | undefined, follow: boolean, limit?: number, last?: number): Promise<void> {
  if (from !== undefined && last !== undefined) throw new InputError("give --from or --last, not both", { hint: "--last 10 prints the newest 10 events; --from <offset> prints from an offset" });
  if (last !== undefined && !(Number.isInteger(last) && last > 0)) throw new InputError(`--last ${last} is not a positive whole number`, { hint: "e.g. --last 10" });
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new InputError(`--limit ${limit} is not a positive whole number`, { hint: "e.g. --limit 10" });
  const nc = await ctx.nats();
  const jsm = await jetstreamManager(nc);
  const info = await logInfo(jsm, ctx.spec.stream).catch((e) => { throw wrapJsError(e, ctx.spec.stream); });
  const o = parseOffset(from ?? "start");
  const startSeq = last !== undefined ? Math.max(info.firstSeq || 1, info.lastSeq - last + 1) : o.kind === "end" ? info.lastSeq + 1 : o.kind === "seq" ? o.seq : o.kind === "time" ? await firstSeqAtOrAfter(jetstream(nc), jsm, ctx.spec.stream, o.time) : 1;
  if (!follow && o.kind === "end" && last === undefined) {
    // `end` is the position after the newest event: alone it prints nothing, which reads like a bug.
    process.stderr.write(`note: --from end starts after the newest event (seq ${info.lastSeq}): nothing to print without --follow\n  hint: \`kappa log tail --from end --follow\` waits for new events; \`kappa log tail --last <n>\` prints the newest n\n`);
    return;
  }
  if (!follow && (info.messages === 0 || startSeq > info.lastSeq)) return;
  const dec = new TextDecoder();
  let printed = 0;
  // Ctrl-C while following: closing the connection ends the stream of batches.
  if (follow) process.once("SIGINT", () => void ctx.close());
  for await (const b of readBatches(jetstream(nc), { stream: ctx.spec.stream, prefix: ctx.spec.prefix, startSeq, follow })) {
    const out: string[] = [];
    for (const e of b.events) {
      if (limit !== undefined && printed >= limit) break;
      // schemaVersion only when not 1, as `kappa append --file` reads it back.
      const sv = e.schemaHeader && e.schemaHeader !== "1" ? `,"schemaVersion":${/^\d+$/.test(e.schemaHeader) ? e.schemaHeader : JSON.stringify(e.schemaHeader)}` : "";
      out.push(`{"seq":${e.seq},"type":${JSON.stringify(e.type)},"time":"${e.time}","id":${JSON.stringify(e.id)}${sv},"data":${dec.decode(e.data) || "null"}}`);
      printed++;
    }
    // Respect the pipe: wait for stdout to drain before reading more.
    if (out.length && !process.stdout.write(out.join("\n") + "\n")) await new Promise((r) => process.stdout.once("drain", r));
    if (limit !== undefined && printed >= limit) break;
  }
}

export function registerLog(program: Command): void {
  const log = program.command("log").description("look at the log itself");
  log.command("info").description("the stream's extent: first and last sequence, count, bytes").action(async (_o, cmd: Command) => {
    const ctx = CliContext.of(cmd);
    try {
      const i = await runLogInfo(ctx);
      if (ctx.json) printJson(i);
      else {
        console.log(`stream    ${i.stream} (${i.subjects.join(", ")})`);
        console.log(`events    ${fmtNum(i.messages)}  (${fmtNum(i.bytes)} bytes)`);
        console.log(`sequence  ${i.messages ? `${i.firstSeq}–${i.lastSeq}` : "empty"}`);
        if (i.firstTime) console.log(`time      ${i.firstTime} – ${i.lastTime}`);
        console.log(`replicas  ${i.replicas}`);
        if (i.cluster) {
          console.log(`cluster   ${i.cluster.name ?? "(unnamed)"}, leader ${i.cluster.leader ?? "none (an election is under way)"}`);
          for (const r of i.cluster.replicas) {
            const state = r.name === i.cluster.leader ? "leader" : r.offline ? "offline" : r.current ? "current" : `not current (down or catching up${r.lag ? `, ${fmtNum(r.lag)} ops behind` : ""}${r.active ? `, last heard ${Math.round(r.active / 1e9)} s ago` : ""})`;
            console.log(`          ${r.name}  ${state}`);
          }
        }
        if (i.unsafe.length) console.log(`WARNING   not append-only: it ${i.unsafe.join(", ")}`);
      }
    } finally {
      await ctx.close();
    }
  });
  log.command("types").description("event types with counts per schema version and an example of each shape").action(async (_o, cmd: Command) => {
    const ctx = CliContext.of(cmd);
    try {
      const nc = await ctx.nats();
      const types = await logTypes(jetstream(nc), await jetstreamManager(nc), ctx.spec);
      if (ctx.json) printJson(types);
      else if (types.length === 0) console.log("the log is empty");
      else console.log(renderTable(["type", "schema", "events", "seqs", "example (first of its shape)"], types.map((t) => [t.type, t.version === 0 ? "invalid" : `v${t.version}`, fmtNum(t.count), `${t.firstSeq}–${t.lastSeq}`, exampleText(t.example)])));
    } finally {
      await ctx.close();
    }
  });
  log
    .command("tail")
    .description("print the raw log from an offset as NDJSON")
    .option("--from <offset>", "sequence, ISO time, start (default) or end (after the newest event: only new ones, with --follow)")
    .option("--last <n>", "start at the newest n events", (v) => Number(v))
    .option("--follow", "keep printing new events until Ctrl-C")
    .option("--limit <n>", "stop after n events", (v) => Number(v))
    .action(async (o: { from?: string; last?: number; follow?: boolean; limit?: number }, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      try {
        await runLogTail(ctx, o.from, o.follow === true, o.limit, o.last);
      } finally {
        await ctx.close();
      }
    });
  registerLogReplicas(log);
}
