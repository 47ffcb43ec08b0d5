import { rmSync, writeFileSync, mkdirSync } from "node:fs";
import type { Command } from "commander";
import { join } from "node:path";
import { NatsServer, NatsCluster, connectNats, DEFAULT_LIMITS, type BatchLimits } from "../../log/index.js";
import { InputError, KappaError } from "../../errors.js";
import { Worker, acquireWorkerLock, DEFAULT_LEASE_TTL_MS, DEFAULT_HANDLER_TIMEOUT_MS, DEFAULT_SNAPSHOT_MIN_INTERVAL_MS, type WorkerOptions } from "../../processors/index.js";
import { validateProcessorName } from "../../views/index.js";
import { CliContext } from "../context.js";
import { queryCapOptions, withQueryCapFlags, type QueryCapFlags } from "../flags.js";
import { parsePort } from "./serve.js";
import { appendOptions, appendSettings, type AppendFlags } from "./serveAppend.js";
import { warnReplicaShortfalls } from "../replicas.js";

/** Resolves on Ctrl-C or SIGTERM. */
function interrupted(): Promise<string> {
  return new Promise((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
}

interface BatchFlags {
  batchEvents: string;
  batchBytes: string;
  batchMs: string;
  handlerTimeout: string;
}

/** The worker's batch caps from flags (defaults chosen from bench/RESULTS.md). */
function batchLimits(o: BatchFlags): BatchLimits {
  const n = (v: string, flag: string) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < 1) throw new InputError(`${flag} ${v} is not a positive integer`, { hint: `e.g. ${flag} ${flag === "--batch-ms" ? 50 : 5000}` });
    return x;
  };
  return { maxEvents: n(o.batchEvents, "--batch-events"), maxBytes: n(o.batchBytes, "--batch-bytes"), maxMs: n(o.batchMs, "--batch-ms") };
}

/** `--handler-timeout` in ms. */
function handlerTimeout(o: BatchFlags): number {
  const x = Number(o.handlerTimeout);
  if (!Number.isInteger(x) || x < 100) throw new InputError(`--handler-timeout ${o.handlerTimeout} is not a whole number of milliseconds ≥ 100`, { hint: `e.g. --handler-timeout ${DEFAULT_HANDLER_TIMEOUT_MS}` });
  return x;
}

/** Adds the batch-cap and handler-timeout flags to a command that runs a worker. */
function withBatchFlags(cmd: Command): Command {
  return cmd
    .option("--handler-timeout <ms>", "fail a version whose handler does not return within this long (its apply thread is stopped)", String(DEFAULT_HANDLER_TIMEOUT_MS))
    .option("--batch-events <n>", "at most this many events per batch transaction", String(DEFAULT_LIMITS.maxEvents))
    .option("--batch-bytes <n>", "at most this many payload bytes per batch", String(DEFAULT_LIMITS.maxBytes))
    .option("--batch-ms <ms>", "commit a partly filled batch after this long", String(DEFAULT_LIMITS.maxMs));
}

/** `--cluster n`: 1 (a single server) when absent. */
function parseClusterSize(v: string | undefined): number {
  if (v === undefined) return 1;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 7) throw new InputError(`--cluster ${v} is not a number of servers from 1 to 7`, { hint: "e.g. --cluster 3 (the smallest cluster that survives losing a server)" });
  return n;
}

function logLine(ctx: CliContext): (l: string) => void {
  return (l) => {
    if (ctx.json) process.stdout.write(JSON.stringify({ at: new Date().toISOString(), msg: l }) + "\n");
    else process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${l}\n`);
  };
}

interface PlacementFlags {
  workerId?: string;
  processors?: string;
  leaseTtl: string;
  snapshotEvery?: string;
  snapshotKeep: string;
  snapshotMinInterval: string;
}

/** Worker id, placement and lease TTL from flags. */
function placement(o: PlacementFlags): Pick<WorkerOptions, "workerId" | "processors" | "leaseTtlMs" | "snapshotEveryMs" | "snapshotKeep" | "snapshotMinIntervalMs"> {
  const every = o.snapshotEvery === undefined ? undefined : Number(o.snapshotEvery);
  if (every !== undefined && !(every >= 1)) throw new InputError(`--snapshot-every ${o.snapshotEvery} is not a number of seconds (at least 1)`, { hint: "e.g. --snapshot-every 300" });
  const keep = Number(o.snapshotKeep);
  if (!Number.isInteger(keep) || keep < 1) throw new InputError(`--snapshot-keep ${o.snapshotKeep} is not a positive whole number`, { hint: "e.g. --snapshot-keep 3" });
  const minInterval = Number(o.snapshotMinInterval);
  if (!(minInterval >= 0)) throw new InputError(`--snapshot-min-interval ${o.snapshotMinInterval} is not a number of seconds`, { hint: "e.g. --snapshot-min-interval 10 (0 lets every request take one)" });
  const ttl = Number(o.leaseTtl);
  if (!(ttl >= 0.3 && ttl <= 600)) throw new InputError(`--lease-ttl ${o.leaseTtl} is not a number of seconds between 0.3 and 600`, { hint: "e.g. --lease-ttl 3 (a writer that stops is replaced within about that long)" });
  const processors = o.processors?.split(",").map((p) => p.trim()).filter((p) => p.length > 0);
  if (processors) for (const p of processors) validateProcessorName(p);
  if (o.workerId !== undefined && !/^[A-Za-z0-9_.:/@-]{1,200}$/.test(o.workerId)) throw new InputError(`--worker-id ${o.workerId} has characters other than letters, digits and _.:/@-`, { hint: "e.g. --worker-id w1" });
  return { ...(o.workerId ? { workerId: o.workerId } : {}), ...(processors?.length ? { processors } : {}), leaseTtlMs: Math.round(ttl * 1000), ...(every ? { snapshotEveryMs: every * 1000 } : {}), snapshotKeep: keep, snapshotMinIntervalMs: Math.round(minInterval * 1000) };
}

/** What a newcomer needs once `kappa dev` is up: where to look, and what to type in a second terminal. */
export function devBanner(httpUrl: string | undefined, dataDir: string, http: { token?: boolean; append?: boolean } = {}): string {
  const dir = dataDir === "./.kappa" || dataDir === ".kappa" ? "" : ` --data-dir ${dataDir}`;
  return [
    "",
    ...(httpUrl
      ? [
          `  status page   ${httpUrl}/${http.token ? "?token=<token>" : ""}`,
          `  HTTP API      ${httpUrl}/views   (described at ${httpUrl}/openapi.json; docs/http.md)`,
          ...(http.append ? [`  events in     POST ${httpUrl}/events   (Authorization: Bearer <token>)`] : []),
          `  metrics       ${httpUrl}/metrics`,
        ]
      : ["  (no HTTP server: --no-serve)"]),
    `  in another terminal, from this directory:  npx kappa${dir} append order.placed '{"user":"ann","amount":12}'  ·  npx kappa${dir} status`,
    "",
  ].join("\n") + "\n";
}

/** Adds the flags of one worker among several (id, placement, lease, snapshots). */
function withPlacementFlags(cmd: Command): Command {
  return cmd
    .option("--worker-id <id>", "this worker's name among several (default: host name and data dir)")
    .option("--processors <a,b>", "hold only these processors (default: all)")
    .option("--snapshot-every <seconds>", "snapshot every version this worker writes this often (default: only on `kappa snapshot`)")
    .option("--snapshot-keep <n>", "snapshots kept per version; older ones are deleted", "3")
    .option("--snapshot-min-interval <seconds>", "`kappa snapshot` takes a new snapshot of a version no sooner than this after its newest one", String(DEFAULT_SNAPSHOT_MIN_INTERVAL_MS / 1000))
    .option("--lease-ttl <seconds>", "writer lease time to live: another worker takes over about this long after a writer stops", String(DEFAULT_LEASE_TTL_MS / 1000));
}

export function registerRun(program: Command): void {
  withPlacementFlags(withBatchFlags(program.command("run")))
    .description("the worker: keeps every non-retired version of every processor (or of --processors) up to date")
    .action(async (o: BatchFlags & PlacementFlags, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      const log = logLine(ctx);
      const limits = batchLimits(o);
      const place = placement(o);
      const handlerTimeoutMs = handlerTimeout(o);
      const nc = await connectNats(ctx.natsOptions({ reconnectForever: true, name: "kappa-worker" }));
      // Rebuilds read on a thread and connection of their own (live first).
      const bulkReader = ctx.natsOptions({ reconnectForever: true, name: "kappa-worker-bulk" });
      const worker = await Worker.start({ nc, bulkReader, spec: ctx.spec, dataDir: ctx.dataDir, log, limits, handlerTimeoutMs, ...place }).catch(async (err: unknown) => {
        await nc.close();
        throw err;
      });
      await warnReplicaShortfalls(nc, ctx.spec, log);
      log(`worker ${worker.id} running on ${ctx.natsUrl}, data dir ${ctx.dataDir.root}${place.processors ? `, processors ${place.processors.join(",")}` : ""}`);
      const sig = await interrupted();
      log(`${sig}: stopping`);
      await worker.close();
      await nc.close();
    });

  const dev = program
    .command("dev")
    .description("zero-config: an embedded nats-server (JetStream under <data-dir>/nats), the worker and the query server in one process")
    .option("--port <port>", "HTTP port of the query server on 127.0.0.1 (0 picks a free one)", "7070")
    .option("--token <token>", "the query server requires `Authorization: Bearer <token>` on every request, as `kappa serve --token` (env KAPPA_HTTP_TOKEN)")
    .option("--no-serve", "do not start the query server")
    .option("--cluster <n>", "start a JetStream cluster of n servers on loopback instead of one (stores under <data-dir>/nats-cluster)");
  withPlacementFlags(withQueryCapFlags(withBatchFlags(appendOptions(dev))))
    .action(async (o: { port: string; token?: string; serve: boolean; cluster?: string } & AppendFlags & BatchFlags & QueryCapFlags & PlacementFlags, cmd: Command) => {
      const ctx = CliContext.of(cmd);
      const log = logLine(ctx);
      const limits = batchLimits(o);
      const place = placement(o);
      const members = parseClusterSize(o.cluster);
      const handlerTimeoutMs = handlerTimeout(o);
      const append = appendSettings(o);
      const token = o.token ?? process.env.KAPPA_HTTP_TOKEN;
      // Checked before anything starts, with the rules of `kappa serve`: writes need the token, also on loopback.
      if (append.allow && !o.serve) throw new InputError("--allow-append takes events through the query server, which --no-serve turns off", { hint: "drop --no-serve, or --allow-append (`kappa append` writes without it)" });
      if (append.allow && !token) {
        throw new KappaError("TOKEN_REQUIRED", "--allow-append needs --token, also on loopback: any local process or web page could otherwise write to the log", {
          hint: "pass --token <secret> (e.g. `openssl rand -hex 24`; env KAPPA_HTTP_TOKEN); producers send `Authorization: Bearer <secret>`",
        });
      }
      mkdirSync(ctx.dataDir.root, { recursive: true });
      // The lock before anything else: a second `kappa dev` on this data dir must not start a server on
      // the same JetStream store, nor touch nats.url, before it learns that the first one is running.
      const lock = acquireWorkerLock(ctx.dataDir.workerLock);
      // On a cluster everything Kappa creates is replicated across it unless --replicas says otherwise.
      if (members > 1) ctx.spec.replicas ??= Math.min(members, 5);
      const server = await (members > 1
        ? NatsCluster.start({ servers: members, storeDir: join(ctx.dataDir.root, "nats-cluster") })
        : NatsServer.start({ storeDir: ctx.dataDir.natsStore })
      ).catch((err: unknown) => {
        lock.release();
        throw err;
      });
      let worker: Worker | undefined;
      let http: { url: string; close: () => Promise<void> } | undefined;
      let nc: Awaited<ReturnType<typeof connectNats>> | undefined;
      try {
        // Inside the try: a refused connection must still stop the servers and free the lock.
        nc = await connectNats({ url: server.url, reconnectForever: true, name: "kappa-dev" });
        writeFileSync(ctx.dataDir.natsUrlFile, server.url + "\n");
        const bulkReader = { url: server.url, reconnectForever: true, name: "kappa-dev-bulk" };
        worker = await Worker.start({ nc, bulkReader, spec: ctx.spec, dataDir: ctx.dataDir, log, limits, lock, handlerTimeoutMs, ...place });
        await warnReplicaShortfalls(nc, ctx.spec, log);
        // Loaded only here: the HTTP stack is most of the CLI's start-up, and no other command needs it.
        if (o.serve) http = await (await import("../http/index.js")).startHttpServer(ctx, { host: "127.0.0.1", port: parsePort(o.port), nc, log, ...(token !== undefined ? { token } : {}), ...queryCapOptions(o), append });
        log(`kappa dev: NATS ${server.url} (pid ${server.pids.join(", ")}), data dir ${ctx.dataDir.root}${http ? `, HTTP ${http.url}` : ""} — Ctrl-C stops`);
        if (ctx.json) process.stdout.write(JSON.stringify({ ready: true, nats: server.url, http: http?.url ?? null, ...(http ? { statusPage: `${http.url}/`, openapi: `${http.url}/openapi.json`, auth: token ? "bearer" : "none", append: append.allow } : {}), dataDir: ctx.dataDir.root }) + "\n");
        else process.stderr.write(devBanner(http?.url, ctx.dataDir.root, { token: token !== undefined, append: append.allow }));
        const sig = await interrupted();
        log(`${sig}: stopping`);
      } finally {
        await http?.close().catch(() => {});
        await worker?.close().catch(() => {});
        await nc?.close().catch(() => {});
        rmSync(ctx.dataDir.natsUrlFile, { force: true });
        await server.close();
        lock.release();
      }
    });
}
