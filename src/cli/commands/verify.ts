import type { Command } from "commander";
import { KappaError } from "../../errors.js";
import { verifyVersion, diffVersions } from "../../processors/index.js";
import { parseVersion, type TableComparison } from "../../views/index.js";
import { CliContext } from "../context.js";
import { recordSource } from "../records.js";
import { printJson, renderTable, fmtNum } from "../output.js";

function tableRows(tables: TableComparison[], sides: [string, string]): unknown[][] {
  return tables.map((t) => [t.table, fmtNum(t.rowsA), fmtNum(t.rowsB), t.equal ? "equal" : t.differing < 0 ? "only on one side" : `${fmtNum(t.differing)} differ${breakdown(t, sides)}`, t.differingKeys.slice(0, 5).join(" ")]);
}

/** "(3 changed, 1 only in v2)": how the differing rows split, unless they all simply changed. */
function breakdown(t: TableComparison, [a, b]: [string, string]): string {
  const parts = [t.changed ? `${fmtNum(t.changed)} changed` : "", t.onlyA ? `${fmtNum(t.onlyA)} only in ${a}` : "", t.onlyB ? `${fmtNum(t.onlyB)} only in ${b}` : ""].filter(Boolean);
  return parts.length > 1 || (parts.length === 1 && !t.changed) ? ` (${parts.join(", ")})` : "";
}

export function registerVerify(program: Command): void {
  program
    .command("verify")
    .description("anti-entropy: rebuild a shadow copy from the log up to the version's checkpoint and compare, table by table")
    .argument("<processor>")
    .option("--version <n>", "verify this version instead of the live one")
    .action(async (processor: string, o: { version?: string }, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      try {
        const r = await verifyVersion(await ctx.nats(), ctx.spec, ctx.dataDir, processor, o.version ? parseVersion(o.version) : undefined);
        if (ctx.json) printJson(r);
        else {
          console.log(renderTable(["table", "view rows", "rebuilt rows", "result", "first differing keys"], tableRows(r.tables, ["the view", "the rebuild"])));
          console.log(r.ok ? `${processor} v${r.version} verified at seq ${r.seq}: identical to a rebuild from the log (digest ${r.digest.slice(0, 16)}; dead letters, late events and window state ${r.platformDigest.slice(0, 16)})` : "");
        }
        if (!r.ok) {
          const bad = r.tables.find((t) => !t.equal);
          const where = bad ? `table ${bad.table}${bad.differingKeys[0] ? `, first at key ${bad.differingKeys[0]}` : ""}` : "its dead letters, late events or window state";
          throw new KappaError("VERIFY_MISMATCH", `${processor} v${r.version} differs from a rebuild at seq ${r.seq}: ${where}`, {
            hint: `the view file was changed outside Kappa or is damaged: replay it (\`kappa replay ${processor} --from start --promote\`)`,
          });
        }
      } finally {
        await ctx.close();
      }
    });
  program
    .command("diff")
    .description("compare two versions at the same sequence: row counts and differing keys per table")
    .argument("<processor>")
    .argument("<a>", "version")
    .argument("<b>", "version")
    .action(async (processor: string, a: string, b: string, _o, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      const [va, vb] = [parseVersion(a), parseVersion(b)];
      // A frozen version never lines up with a live one: compare each at its own checkpoint ("what changed since then").
      const rec = await recordSource(ctx)(processor).finally(() => ctx.close());
      const frozen = (v: number) => rec?.versions[String(v)]?.untilSeq !== undefined;
      const r = await diffVersions(ctx.dataDir, processor, va, vb, 5000, frozen(va) || frozen(vb));
      if (ctx.json) printJson(r);
      else {
        const at = (x: { version: number; seq: number }) => `v${x.version}${frozen(x.version) ? " (frozen)" : ""}`;
        console.log(r.a.seq === r.b.seq ? `${processor} ${at(r.a)} vs ${at(r.b)} at seq ${r.a.seq}` : `${processor} ${at(r.a)} at seq ${r.a.seq} vs ${at(r.b)} at seq ${r.b.seq}`);
        console.log(renderTable(["table", `v${r.a.version} rows`, `v${r.b.version} rows`, "result", "differing keys (first 5)"], tableRows(r.tables, [`v${r.a.version}`, `v${r.b.version}`])));
      }
    });
}
