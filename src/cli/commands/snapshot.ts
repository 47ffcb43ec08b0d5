import type { Command } from "commander";
import { InputError } from "../../errors.js";
import { parseVersion, requestSnapshot, validateProcessorName } from "../../views/index.js";
import { SnapshotStore, type SnapshotInfo, type TakenSnapshot } from "../../processors/index.js";
import { CliContext } from "../context.js";
import { printJson, fmtNum, renderTable } from "../output.js";

/** One line about what a snapshot request got. */
function takenLine(s: TakenSnapshot & { worker: string }): string {
  const what = `snapshot of ${s.processor} v${s.version} at checkpoint ${fmtNum(s.checkpoint)} (${fmtNum(s.bytes)} bytes)`;
  if (s.unchanged) return `${what}: already stored as ${s.name} (the checkpoint has not moved since), taken by ${s.worker}`;
  return `${what} stored as ${s.name}, taken by ${s.worker}${s.joined ? " (for a request already in progress)" : ""}`;
}

/** The snapshots of a processor (or one version) as a table; bad ones say why nobody restores them. */
function listTable(list: SnapshotInfo[]): string {
  return renderTable(
    ["name", "checkpoint", "bytes", "taken", "by", "state"],
    list.map((s) => [s.name, fmtNum(s.checkpoint), fmtNum(s.bytes), s.createdAt, s.takenBy ?? "", s.bad ? `BAD (${s.bad.by || "?"}, ${s.bad.at}): ${s.bad.reason}` : "ok"]),
  );
}

/** `kappa snapshot`: the writer of the version stores a consistent copy of its view file and checkpoint; --list shows what is stored. */
export function registerSnapshot(program: Command): void {
  program
    .command("snapshot")
    .description("store a consistent copy of a version's view file and checkpoint in the object store, so a new worker replays only the tail; --list shows the stored ones")
    .argument("<processor>")
    .option("--version <n>", "snapshot (or list) this version instead of the live one (--list: every version)")
    .option("--list", "list the stored snapshots instead of taking one; those a replica found unusable are marked BAD with why")
    .option("--timeout <seconds>", "give up after this long", "30")
    .action(async (processor: string, o: { version?: string; list?: boolean; timeout: string }, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      const timeoutMs = Math.round(Number(o.timeout) * 1000);
      if (!(timeoutMs > 0)) throw new InputError(`--timeout ${o.timeout} is not a positive number of seconds`, { hint: "e.g. --timeout 60" });
      const version = o.version ? parseVersion(o.version) : undefined;
      try {
        const nc = await ctx.nats({ timeoutMs: 2000 });
        if (o.list) {
          validateProcessorName(processor);
          const store = await SnapshotStore.open(nc, ctx.spec.stream, ctx.spec.replicas);
          const list = version === undefined ? await store.listAll(processor) : await store.list(processor, version);
          if (ctx.json) printJson({ processor, snapshots: list });
          else if (list.length === 0) console.log(`no snapshots of ${processor}${version === undefined ? "" : ` v${version}`} (take one with \`kappa snapshot ${processor}\`)`);
          else console.log(listTable(list));
          return;
        }
        const s = await requestSnapshot<TakenSnapshot>(nc, ctx.spec.stream, processor, version, timeoutMs);
        if (ctx.json) printJson(s);
        else console.log(takenLine(s));
      } finally {
        await ctx.close();
      }
    });
}
