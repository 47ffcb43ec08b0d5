import type { Command } from "commander";
import { InputError } from "../../errors.js";
import { parseVersion, requestSnapshot } from "../../views/index.js";
import type { SnapshotInfo } from "../../processors/index.js";
import { CliContext } from "../context.js";
import { printJson, fmtNum } from "../output.js";

/** `kappa snapshot`: a worker holding the version stores a consistent copy of its view file and checkpoint. */
export function registerSnapshot(program: Command): void {
  program
    .command("snapshot")
    .description("store a consistent copy of a version's view file and checkpoint in the object store, so a new worker replays only the tail")
    .argument("<processor>")
    .option("--version <n>", "snapshot this version instead of the live one")
    .option("--timeout <seconds>", "give up after this long", "30")
    .action(async (processor: string, o: { version?: string; timeout: string }, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      const timeoutMs = Math.round(Number(o.timeout) * 1000);
      if (!(timeoutMs > 0)) throw new InputError(`--timeout ${o.timeout} is not a positive number of seconds`, { hint: "e.g. --timeout 60" });
      try {
        const nc = await ctx.nats({ timeoutMs: 2000 });
        const s = await requestSnapshot<SnapshotInfo>(nc, ctx.spec.stream, processor, o.version ? parseVersion(o.version) : undefined, timeoutMs);
        if (ctx.json) printJson(s);
        else console.log(`snapshot of ${s.processor} v${s.version} at checkpoint ${fmtNum(s.checkpoint)} (${fmtNum(s.bytes)} bytes) stored as ${s.name}, taken by ${s.worker}`);
      } finally {
        await ctx.close();
      }
    });
}
