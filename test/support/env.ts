import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { NatsServer, NatsCluster, connectNats, ensureStream, appendEvents, DEFAULT_STREAM, type StreamSpec } from "../../src/log/index.js";
import { Catalog, DataDir, type ProcessorRecord } from "../../src/views/index.js";
import { Worker, type WorkerOptions } from "../../src/processors/index.js";
import { generateOrders, type OrderEvent } from "../../examples/orders/generate.js";

let clusters = 0;

/**
 * A real nats-server on a free port with a temp store (or, with `cluster: n`, n servers routed on
 * loopback with the stream and everything else replicated n times), a connection to all of them, and
 * a temp data dir; all stopped by PID and removed on dispose, also when the test failed.
 */
export class TestEnv {
  private constructor(readonly nats: NatsServer | NatsCluster, public nc: NatsConnection, readonly jsm: JetStreamManager, readonly dir: string, readonly spec: StreamSpec) {}
  readonly workers: Worker[] = [];

  static async start(opts: { cluster?: number } = {}): Promise<TestEnv> {
    // A name of its own: a member dialling a route port another test's cluster took meanwhile is refused, not merged.
    const nats = opts.cluster ? await NatsCluster.start({ servers: opts.cluster, name: `kappa-test-${process.pid}-${++clusters}` }) : await NatsServer.start();
    const spec: StreamSpec = opts.cluster ? { ...DEFAULT_STREAM, replicas: opts.cluster } : DEFAULT_STREAM;
    try {
      const nc = await connectNats({ url: nats.url, reconnectForever: true });
      const jsm = await ensureStream(nc, spec);
      return new TestEnv(nats, nc, jsm, mkdtempSync(join(tmpdir(), "kappa-test-")), spec);
    } catch (err) {
      await nats.close();
      throw err;
    }
  }

  /** The single server (not on a cluster). */
  get server(): NatsServer {
    if (!(this.nats instanceof NatsServer)) throw new Error("this TestEnv runs a cluster: use env.cluster");
    return this.nats;
  }

  /** The cluster (started with `cluster: n`). */
  get cluster(): NatsCluster {
    if (!(this.nats instanceof NatsCluster)) throw new Error("this TestEnv runs a single server: start it with { cluster: 3 }");
    return this.nats;
  }

  /** The index of the cluster member that leads a stream (or the catalog's KV stream) now. */
  async leaderOf(stream = this.spec.stream): Promise<number> {
    const info = await this.jsm.streams.info(stream);
    const leader = info.cluster?.leader;
    if (!leader) throw new Error(`stream ${stream} has no leader right now`);
    return this.cluster.indexOf(leader);
  }

  get dataDir(): DataDir {
    return new DataDir(join(this.dir, "data"));
  }

  get js() {
    return jetstream(this.nc);
  }

  /** Appends events; returns the last sequence. */
  async append(events: Iterable<{ type: string; id: string; data: unknown }>): Promise<number> {
    const s = await appendEvents(this.nc, this.spec, (function* () {
      for (const e of events) yield { type: e.type, id: e.id, json: JSON.stringify(e.data) };
    })());
    return s.lastSeq ?? 0;
  }

  /** Appends `count` generated order events with the given seed. */
  async appendOrders(count: number, seed = 1): Promise<OrderEvent[]> {
    const evs = [...generateOrders(count, seed)];
    await this.append(evs);
    return evs;
  }

  async startWorker(dataDir = this.dataDir, log?: (l: string) => void, extra: Partial<WorkerOptions> = {}): Promise<Worker> {
    const w = await Worker.start({ nc: this.nc, spec: this.spec, dataDir, log, ...extra });
    this.workers.push(w);
    return w;
  }

  async catalog(): Promise<Catalog> {
    return Catalog.open(this.nc, this.spec.stream);
  }

  /** Waits until `check` holds on the processor's record (polling the catalog). */
  async waitForRecord(name: string, check: (r: ProcessorRecord) => boolean, timeoutMs = 30_000): Promise<ProcessorRecord> {
    const cat = await this.catalog();
    return waitFor(async () => {
      const r = await cat.get(name);
      return r && check(r.record) ? r.record : undefined;
    }, timeoutMs, `record of ${name}`);
  }

  /** Like waitForRecord, for the catalog of another stream. */
  async waitForRecordOn(spec: StreamSpec, name: string, check: (r: ProcessorRecord) => boolean, timeoutMs = 30_000): Promise<ProcessorRecord> {
    const cat = await Catalog.open(this.nc, spec.stream);
    return waitFor(async () => {
      const r = await cat.get(name);
      return r && check(r.record) ? r.record : undefined;
    }, timeoutMs, `record of ${name} on ${spec.stream}`);
  }

  async close(): Promise<void> {
    for (const w of this.workers) await w.close().catch(() => {});
    await this.nc.close().catch(() => {});
    await this.nats.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Polls until `fn` returns a value (not undefined/false) or the time runs out. */
export async function waitFor<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ""}`);
}
