import { join } from "node:path";
import type { Command } from "commander";
import { InputError } from "../../errors.js";
import { validateProcessorName } from "../../views/index.js";
import { CliContext } from "../context.js";
import { runRepl } from "../shell/repl.js";
import { ShellSession } from "../shell/session.js";

/** `kappa shell [processor]`: an interactive, read-only SQL shell over one view or every live one. */
export function registerShell(program: Command): void {
  program
    .command("shell")
    .description("interactive read-only SQL over one view, or every live view by name (history, table-name completion, .tables .schema .versions .mode .timer)")
    .argument("[processor]", "open this view (tables by their own names); without it every live view is attached by name")
    .option("--timeout <seconds>", "stop a statement after this long", "30")
    .action(async (processor: string | undefined, flags: { timeout: string }, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      const timeoutMs = Math.round(Number(flags.timeout) * 1000);
      if (!(timeoutMs > 0)) throw new InputError(`--timeout ${flags.timeout} is not a positive number of seconds`);
      if (processor) validateProcessorName(processor);
      const session = await ShellSession.open(ctx, processor, timeoutMs);
      const interactive = process.stdin.isTTY === true;
      try {
        if (interactive) {
          const names = session.views.map((v) => v.processor).join(", ");
          process.stderr.write(`kappa shell: ${names} (${session.tables.length} table${session.tables.length === 1 ? "" : "s"}, read-only). .help for help, Ctrl-D to leave.\n`);
        }
        await runRepl(session, { historyFile: join(ctx.dataDir.root, "shell_history"), interactive });
      } finally {
        await session.close();
      }
    });
}
