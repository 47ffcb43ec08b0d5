import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { NatsServer, connectNats, ensureStream, appendEvents, DEFAULT_STREAM, type StreamSpec } from "../../src/log/index.js";
import { Catalog, DataDir, type ProcessorRecord } from "../../src/views/index.js";
import { Worker, type WorkerOptions } from "../../src/processors/index.js";
import { generateOrders, type OrderEvent } from "../../examples/orders/generate.js";

/** A real nats-server on a free port with a temp store, a connection, and a temp data dir; all removed on dispose. */
export class TestEnv {
  private constructor(readonly server: NatsServer, public nc: NatsConnection, readonly jsm: JetStreamManager, readonly dir: string) {}
  readonly spec: StreamSpec = DEFAULT_STREAM;
  readonly workers: Worker[] = [];

  static async start(): Promise<TestEnv> {
    const server = await NatsServer.start();
    const nc = await connectNats({ url: server.url, reconnectForever: true });
    const jsm = await ensureStream(nc, DEFAULT_STREAM);
    return new TestEnv(server, nc, jsm, mkdtempSync(join(tmpdir(), "kappa-test-")));
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

  async close(): Promise<void> {
    for (const w of this.workers) await w.close().catch(() => {});
    await this.nc.close().catch(() => {});
    await this.server.close();
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
