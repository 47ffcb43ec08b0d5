import type { Command } from "commander";
import { raiseReplicas, replicaShortfalls, shortfallWarning } from "../../processors/index.js";
import { CliContext } from "../context.js";
import { printJson } from "../output.js";

/** `kappa log replicas [--apply]`: what Kappa keeps for this log with fewer replicas than asked, and raising them. */
export function registerLogReplicas(log: Command): void {
  log
    .command("replicas")
    .description("buckets and output streams of this log with fewer replicas than --replicas (else the log) asks; --apply raises them")
    .option("--apply", "raise them now (the servers copy the data while serving)")
    .action(async (o: { apply?: boolean }, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      try {
        const nc = await ctx.nats();
        const short = await replicaShortfalls(nc, ctx.spec);
        const raised = o.apply ? await raiseReplicas(nc, short) : [];
        if (ctx.json) printJson({ shortfalls: short, raised: raised.map((s) => s.stream) });
        else if (short.length === 0) console.log("every bucket and output stream of this log keeps as many replicas as asked");
        else if (o.apply) for (const s of raised) console.log(`raised ${s.what} (${s.stream}) from ${s.has} to ${s.wants} replicas`);
        else {
          const w = shortfallWarning(short)!;
          console.log(`${w.message}\n  hint: ${w.hint}`);
        }
      } finally {
        await ctx.close();
      }
    });
}
