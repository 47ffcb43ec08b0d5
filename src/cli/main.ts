import { Command, CommanderError } from "commander";
import { registerAppend } from "./commands/append.js";
import { registerLog } from "./commands/log.js";
import { registerDeploy } from "./commands/deploy.js";
import { registerStatus } from "./commands/status.js";
import { registerLifecycle } from "./commands/lifecycle.js";
import { registerQuery } from "./commands/query.js";
import { registerRun } from "./commands/run.js";
import { registerServe } from "./commands/serve.js";
import { registerExport } from "./commands/export.js";
import { registerShell } from "./commands/shell.js";
import { registerVerify } from "./commands/verify.js";
import { registerDlq } from "./commands/dlq.js";
import { registerSnapshot } from "./commands/snapshot.js";
import { reportError } from "./output.js";

/** Builds the `kappa` program: global options and one subcommand per file under commands/. */
export function buildProgram(): Command {
  const program = new Command("kappa")
    .description("Kappa: an append-only NATS JetStream log, versioned processors, SQLite views swapped in atomically")
    .option("--nats <urls>", "NATS server URL, or several comma-separated (env NATS_URL; default: the one `kappa dev` started for this data dir)")
    .option("--data-dir <dir>", "where view files live (env KAPPA_DATA_DIR)", process.env.KAPPA_DATA_DIR ?? "./.kappa")
    .option("--stream <name>", "JetStream stream of events", process.env.KAPPA_STREAM ?? "KAPPA")
    .option("--prefix <subject>", "subject prefix before each event type", "events")
    .option("--duplicate-window <seconds>", "how long the stream remembers idempotency keys, when Kappa creates it (default 120)")
    .option("--replicas <n>", "replicas of everything Kappa creates: stream, catalog, code store, outputs (env KAPPA_REPLICAS; default: the stream's own, else 1)", process.env.KAPPA_REPLICAS)
    .option("--allow-unsafe-log", "use an existing stream that allows delete or purge, or drops events by limits (`kappa status` says so)")
    .option("--json", "machine-readable output (only JSON on stdout, errors included)")
    .option("--creds <file>", "NATS credentials file")
    .option("--user <user>", "NATS user")
    .option("--password <password>", "NATS password")
    .option("--nats-token <token>", "NATS token")
    .option("--tls-ca <file>", "CA certificate for TLS to NATS")
    .option("--tls-cert <file>", "client certificate for TLS to NATS (for `kappa serve`: the HTTPS certificate)")
    .option("--tls-key <file>", "client key for TLS to NATS (for `kappa serve`: the HTTPS key)")
    .option("--nats-tls-cert <file>", "client certificate for TLS to NATS, for every command (`kappa serve` included)")
    .option("--nats-tls-key <file>", "client key for TLS to NATS, for every command (`kappa serve` included)")
    .showHelpAfterError("(run `kappa --help` for usage)")
    .exitOverride();
  registerAppend(program);
  registerLog(program);
  registerDeploy(program);
  registerStatus(program);
  registerLifecycle(program);
  registerQuery(program);
  registerRun(program);
  registerVerify(program);
  registerDlq(program);
  registerServe(program);
  registerExport(program);
  registerShell(program);
  registerSnapshot(program);
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    return reportError(err, argv.includes("--json"));
  }
}

const code = await main(process.argv);
process.exitCode = code;
// NATS sockets or worker threads left open by a failed command must not keep the process alive.
if (code !== 0) setTimeout(() => process.exit(code), 200).unref();
