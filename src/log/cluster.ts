import { createServer } from "node:net";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { jetstreamManager, StorageType, type JetStreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { KappaError, messageOf } from "../errors.js";
import { NatsServer, type ServerOptions } from "./server.js";

/** Options for a loopback JetStream cluster. */
export interface ClusterOptions {
  /** How many servers (default 3: the smallest cluster that survives losing one). */
  servers?: number;
  /** Parent directory of the servers' stores (`<dir>/n1`, `<dir>/n2`, …); a temporary one when omitted. */
  storeDir?: string;
  /** Forward every server's log here. */
  log?: NodeJS.WritableStream;
  /** The cluster's name (default "kappa"). */
  name?: string;
}

/** Starts of a cluster tried before giving up, when its first route port was taken before the server bound it. */
const BIND_ATTEMPTS = 5;

/** A free TCP port on loopback, for the first member's route port, which the others must know before they start. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Several nats-servers with JetStream, routed to each other on loopback; each stopped by its PID. */
export class NatsCluster {
  private constructor(
    readonly servers: (NatsServer | null)[],
    private readonly specs: ServerOptions[],
    readonly storeDir: string,
    private readonly ownsStore: boolean,
  ) {}

  /**
   * Starts the members and waits until JetStream has a meta leader. Each server picks its own client port,
   * and every member but the first its own route port; they all dial the first's route port, which has to be
   * chosen beforehand: when something took it before the server bound it, the start is tried again on another.
   */
  static async start(opts: ClusterOptions = {}): Promise<NatsCluster> {
    const n = opts.servers ?? 3;
    if (!Number.isInteger(n) || n < 1) throw new KappaError("BAD_INPUT", `a cluster needs at least one server (asked for ${n})`, { hint: "e.g. --cluster 3" });
    const ownsStore = !opts.storeDir;
    const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), "kappa-cluster-"));
    for (let attempt = 1; ; attempt++) {
      try {
        return await NatsCluster.#startOnce(n, opts, storeDir, ownsStore);
      } catch (err) {
        if (attempt >= BIND_ATTEMPTS || !/address already in use/.test(messageOf(err))) {
          if (ownsStore) rmSync(storeDir, { recursive: true, force: true });
          throw err;
        }
        // A store of our own starts the next try empty, as the first did; a caller's store is kept as it is.
        if (ownsStore) for (let i = 1; i <= n; i++) rmSync(join(storeDir, `n${i}`), { recursive: true, force: true });
      }
    }
  }

  static async #startOnce(n: number, opts: ClusterOptions, storeDir: string, ownsStore: boolean): Promise<NatsCluster> {
    const seed = await freePort();
    const specs = Array.from({ length: n }, (_, i): ServerOptions => {
      const dir = join(storeDir, `n${i + 1}`);
      mkdirSync(dir, { recursive: true });
      return { storeDir: dir, name: `n${i + 1}`, log: opts.log, cluster: { name: opts.name ?? "kappa", port: i === 0 ? seed : -1, routes: [seed] } };
    });
    const started = await Promise.allSettled(specs.map((s) => NatsServer.start(s)));
    const servers = started.map((r) => (r.status === "fulfilled" ? r.value : null));
    // Not the store: a retry starts again on it, and a caller's store is the caller's.
    const cluster = new NatsCluster(servers, specs, storeDir, false);
    const failed = started.find((r) => r.status === "rejected");
    if (failed) {
      await cluster.close();
      throw (failed as PromiseRejectedResult).reason;
    }
    // Ports are fixed from now on, so a restarted member comes back where its peers and clients look.
    const routes = servers.map((s) => s!.clusterPort!);
    servers.forEach((s, i) => {
      specs[i]!.port = s!.port;
      specs[i]!.cluster = { ...specs[i]!.cluster!, port: routes[i]!, routes };
    });
    const ready = new NatsCluster(servers, specs, storeDir, ownsStore);
    try {
      await ready.waitForJetStream();
    } catch (err) {
      await ready.close();
      throw err;
    }
    return ready;
  }

  /** Every member's client URL, comma-separated, as `--nats` and NATS_URL take them. */
  get url(): string {
    return this.urls.join(",");
  }

  /** The client URLs of the members (also of stopped ones: they come back on the same port). */
  get urls(): string[] {
    return this.specs.map((s) => `nats://127.0.0.1:${s.port}`);
  }

  /** The PIDs of the running members. */
  get pids(): number[] {
    return this.servers.filter((s): s is NatsServer => s !== null).map((s) => s.pid);
  }

  /** Member i's index by its server name ("n2" → 1). */
  indexOf(serverName: string): number {
    return this.specs.findIndex((s) => s.name === serverName);
  }

  /** Kills member i with SIGKILL, as a crash would. */
  async kill(i: number): Promise<void> {
    await this.servers[i]?.kill();
    this.servers[i] = null;
  }

  /** Starts member i again on its port and store. */
  async restart(i: number): Promise<void> {
    if (this.servers[i]) return;
    this.servers[i] = await NatsServer.start(this.specs[i]!);
  }

  /**
   * Waits until the cluster answers JetStream requests (a meta leader is elected), every stream in its
   * stores has a leader (a cluster started again on its stores elects them one by one, and a request to a
   * stream without one times out), and a stream replicated on every running member can be placed: members
   * find each other through the first one's route port, and until the meta leader knows them all, creating
   * such a stream fails with "no suitable peers for placement".
   */
  async waitForJetStream(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    const nc = await connect({ servers: this.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    try {
      const jsm = await jetstreamManager(nc, { timeout: 2000, checkAPI: false });
      while (Date.now() < deadline) {
        try {
          await jsm.getAccountInfo();
          const leaderless: string[] = [];
          // Names come from the meta leader's assignments; info needs each stream's own leader.
          for await (const name of jsm.streams.names()) {
            const si = await jsm.streams.info(name).catch(() => null);
            if (!si?.cluster?.leader) leaderless.push(name);
          }
          if (leaderless.length === 0 && (await placesOnAll(jsm, this.pids.length))) return;
          last = leaderless.length ? new Error(`streams without a leader yet: ${leaderless.join(", ")}`) : new Error(`a stream with ${this.pids.length} replicas cannot be placed yet`);
          await new Promise((r) => setTimeout(r, 100));
        } catch (err) {
          last = err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      await nc.close().catch(() => {});
    }
    throw new KappaError("NATS_SERVER_FAILED", `the cluster elected no JetStream leader within ${timeoutMs / 1000} s: ${messageOf(last)}`, {
      hint: "check that the route ports are free and the stores writable",
    });
  }

  /** Stops every member (SIGTERM, then SIGKILL) and removes a temporary store. */
  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => s?.close()));
    this.servers.fill(null);
    if (this.ownsStore) rmSync(this.storeDir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}


/** Whether a stream replicated `replicas` times can be placed now: a memory stream made and deleted at once. */
async function placesOnAll(jsm: JetStreamManager, replicas: number): Promise<boolean> {
  if (replicas <= 1) return true;
  const name = `KAPPA_PLACEMENT_PROBE_${process.pid}_${Date.now()}`;
  try {
    await jsm.streams.add({ name, subjects: [`kappa_placement_probe.${process.pid}.${Date.now()}`], storage: StorageType.Memory, num_replicas: replicas, max_msgs: 1 });
  } catch (err) {
    if (/no suitable peers|insufficient resources/i.test(messageOf(err))) return false;
    throw err;
  }
  await jsm.streams.delete(name).catch(() => {});
  return true;
}
