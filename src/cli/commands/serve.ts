import type { Command } from "commander";
import { InputError } from "../../errors.js";
import { CliContext, type GlobalOptions } from "../context.js";
import { queryCapOptions, withQueryCapFlags, type QueryCapFlags } from "../flags.js";
import { warnReplicaShortfalls } from "../replicas.js";
import { appendOptions, appendSettings, type AppendFlags } from "./serveAppend.js";
import { MAX_STALENESS_HELP, parseMaxStaleness } from "./queryRemote.js";

interface ServeFlags extends AppendFlags, QueryCapFlags {
  host: string;
  port: string;
  token?: string;
  remote?: boolean;
  maxStaleness?: string;
}

/** Parses --port: 0–65535, 0 picks a free port. */
export function parsePort(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new InputError(`--port ${text} is not a TCP port`, { hint: "use 1–65535, or 0 for a free one", code: "BAD_PORT" });
  return n;
}

/** Resolves on Ctrl-C or SIGTERM. */
function interrupted(): Promise<string> {
  return new Promise((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
}

/** `kappa serve`: the HTTP server in the foreground until Ctrl-C. */
export function registerServe(program: Command): void {
  const serve = program
    .command("serve")
    .description("HTTP query API (read-your-writes, change streams), Prometheus metrics, health and a status page")
    .option("--host <address>", "address to bind; anything but loopback requires --token", "127.0.0.1")
    .option("--port <port>", "TCP port (0 picks a free one)", "7070")
    .option("--token <token>", "require `Authorization: Bearer <token>` on every request (env KAPPA_HTTP_TOKEN)")
    .option("--tls-cert <file>", "serve HTTPS with this certificate (PEM; with --tls-key); NATS client certs then go in --nats-tls-cert/--nats-tls-key")
    .option("--tls-key <file>", "the HTTPS private key (PEM)")
    .option("--remote", "answer view queries over NATS from the workers holding them (any fresh enough replica; answers never go backwards), not from this data dir")
    .option("--max-staleness <events|any>", MAX_STALENESS_HELP);
  withQueryCapFlags(appendOptions(serve))
    .action(async (flags: ServeFlags, cmd: Command) => {
      const g = cmd.optsWithGlobals() as GlobalOptions;
      // The global --tls-cert/--tls-key parse first; for serve they name the HTTPS certificate, not a NATS client one.
      const tlsCert = g.tlsCert;
      const tlsKey = g.tlsKey;
      if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new InputError("--tls-cert and --tls-key go together", { hint: "pass both PEM files to serve HTTPS, or neither" });
      const maxStaleness = parseMaxStaleness(flags.maxStaleness);
      if (maxStaleness !== undefined && !flags.remote) throw new InputError("--max-staleness needs --remote", { hint: "without --remote, queries read this data dir's copy; add --remote to ask the workers" });
      const ctx = new CliContext({ ...g, tlsCert: undefined, tlsKey: undefined });
      // The HTTP token; NATS has its own (--nats-token).
      const token = flags.token ?? process.env.KAPPA_HTTP_TOKEN;
      // Loaded only here: the HTTP stack is most of the CLI's start-up, and no other command needs it.
      const { startHttpServer } = await import("../http/index.js");
      const server = await startHttpServer(ctx, {
        host: flags.host,
        port: parsePort(flags.port),
        ...(token !== undefined ? { token } : {}),
        ...(tlsCert && tlsKey ? { tls: { cert: tlsCert, key: tlsKey } } : {}),
        ...queryCapOptions(flags),
        append: appendSettings(flags),
        ...(flags.remote ? { remote: true, ...(maxStaleness !== undefined ? { maxStaleness } : {}) } : {}),
        log: (l) => process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${l}\n`),
      });
      const nats = server.health();
      if (ctx.connection) await warnReplicaShortfalls(ctx.connection, ctx.spec, (l) => process.stderr.write(`${l}\n`));
      if (ctx.json) process.stdout.write(JSON.stringify({ ready: true, http: server.url, auth: token ? "bearer" : "none", append: flags.allowAppend === true, tls: tlsCert !== undefined, nats: nats.reachable ? "ok" : "unreachable" }) + "\n");
      else if (!nats.reachable) process.stderr.write(`note: NATS is unreachable (${nats.error}); answering from the local catalog copy (${nats.source}) and reconnecting in the background\n`);
      if (!ctx.json) process.stderr.write(`kappa serve: ${server.url} (status page at ${server.url}/${token ? "?token=<token>" : ""}) — Ctrl-C stops\n`);
      const sig = await interrupted();
      if (!ctx.json) process.stderr.write(`${sig}: stopping\n`);
      await server.close();
    });
}
