import { jetstream, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { messageOf } from "../errors.js";
import { ensureStream } from "../log/index.js";
import { Catalog, WorkerRegistry, markFailed, updateCatalogCache, type ProcessorRecord, type VersionRecord } from "../views/index.js";
import { CodeStore } from "./codeStore.js";
import { loadProcessor } from "./load.js";
import { VersionRunner, type InputSpec } from "./runner.js";
import { outputOf } from "./derived.js";
import { CatalogFeed } from "./catalogFeed.js";
import { acquireWorkerLock } from "./workerLock.js";
import { defaultWorkerId, type WorkerOptions } from "./workerOptions.js";
import { RetiredSweep } from "./retiredSweep.js";
import { upstreamSettled, type UpstreamView } from "./upstreamSettled.js";
import { StatsReporter } from "./stats.js";
import { LeaseTable, DEFAULT_LEASE_TTL_MS } from "./lease.js";
import { VersionWriter } from "./writer.js";
import { Heartbeat } from "./heartbeat.js";
import { QueryService } from "./queryService.js";
import { SnapshotStore, DEFAULT_SNAPSHOT_KEEP } from "./snapshots.js";
import { restoreViewFile } from "./seed.js";
import { SnapshotSchedule } from "./snapshotSchedule.js";
import { SnapshotTaker } from "./snapshotTaker.js";
import { LiveFirst } from "./liveFirst.js";
import { schemaNoteText } from "./schemaCheck.js";
import { BulkReader } from "./bulkReader.js";

const ACTIVE = new Set(["building", "caught-up", "live"]);
/** Errors that say the code itself is bad: the version fails. Anything else is retried. */
const CODE_ERRORS = new Set(["CODE_LOAD_FAILED", "BAD_PROCESSOR", "CODE_CORRUPT", "NOT_FOUND", "BAD_INPUT", "BAD_NAME"]);

/** `kappa run`: watches the catalog and keeps every non-retired version of every processor current, each from its own checkpoint. */
export class Worker {
  readonly runners = new Map<string, VersionRunner>();
  /** The writer role of each running version (keys as in `runners`). */
  readonly writers = new Map<string, VersionWriter>();
  readonly #records = new Map<string, ProcessorRecord>();
  #queue: Promise<void> = Promise.resolve();
  #feed: CatalogFeed | undefined;
  #cleanup: NodeJS.Timeout | undefined;
  #sweep: RetiredSweep | undefined;
  #leaseTimer: NodeJS.Timeout | undefined;
  #stats: StatsReporter | undefined;
  #heartbeat: Heartbeat | undefined;
  #queries: QueryService | undefined;
  #snapshots: SnapshotStore | undefined;
  #schedule: SnapshotSchedule | undefined;
  #taker: SnapshotTaker | undefined;
  #closed = false;
  /** Live versions first: rebuilds read in small pulls and apply at lower priority while live ones have events. */
  #liveFirst: LiveFirst | undefined;
  /** Reads for versions catching up, on a thread and connection of its own. */
  #bulkReader: BulkReader | undefined;

  private constructor(
    private readonly opts: WorkerOptions,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    readonly catalog: Catalog,
    private readonly code: CodeStore,
    readonly leases: LeaseTable,
    private readonly registry: WorkerRegistry,
    private readonly releaseLock: () => void,
  ) {}

  /** This worker's id. */
  get id(): string {
    return this.leases.worker;
  }

  /** Starts a worker: takes the data dir's lock, ensures the streams, and follows the catalog. */
  static async start(opts: WorkerOptions): Promise<Worker> {
    const lock = opts.lock ?? acquireWorkerLock(opts.dataDir.workerLock);
    const release = opts.lock ? () => {} : () => lock.release();
    try {
      const jsm = await ensureStream(opts.nc, opts.spec);
      const catalog = await Catalog.open(opts.nc, opts.spec.stream, opts.spec.replicas);
      const code = await CodeStore.open(opts.nc, opts.spec.stream, opts.dataDir, opts.spec.replicas);
      const leases = await LeaseTable.open(opts.nc, opts.spec.stream, opts.workerId ?? defaultWorkerId(opts.dataDir), opts.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS, opts.spec.replicas);
      const registry = await WorkerRegistry.open(opts.nc, opts.spec.stream, opts.spec.replicas);
      const w = new Worker(opts, jetstream(opts.nc), jsm, catalog, code, leases, registry, release);
      await w.#begin();
      return w;
    } catch (err) {
      release();
      throw err;
    }
  }

  async #begin(): Promise<void> {
    this.#liveFirst = await LiveFirst.create();
    if (this.opts.bulkReader) this.#bulkReader = new BulkReader(this.opts.bulkReader, this.#liveFirst.lowerRebuilds, this.opts.dataDir.root + "/code");
    // A new replica seeds missing view files from snapshots; without the bucket it replays the whole log.
    this.#snapshots = await SnapshotStore.open(this.opts.nc, this.opts.spec.stream, this.opts.spec.replicas).catch((err: unknown) => void this.#log(`snapshots are off: ${messageOf(err)}`));
    if (this.#snapshots) {
      const { snapshotKeep, snapshotMinIntervalMs } = this.opts;
      this.#taker = new SnapshotTaker({ store: this.#snapshots, dataDir: this.opts.dataDir, keep: snapshotKeep ?? DEFAULT_SNAPSHOT_KEEP, worker: this.id, ...(snapshotMinIntervalMs !== undefined ? { minIntervalMs: snapshotMinIntervalMs } : {}) });
    }
    this.#feed = new CatalogFeed(this.catalog, (r, rev) => this.#enqueue(r, rev), (m) => this.#log(m), this.opts.resyncMs);
    await this.#feed.read();
    await this.#queue;
    this.#feed.follow();
    this.#sweep = new RetiredSweep(this.opts.dataDir, (m) => this.#log(m));
    this.#cleanup = setInterval(() => this.#sweep?.sweep(this.#records.values(), (key) => this.runners.has(key)), this.opts.sweepMs ?? 1000);
    void this.#watchConnection();
    this.#stats = new StatsReporter(this.catalog, this.jsm, this.runners, (m) => this.#log(m), (key) => this.writers.get(key)?.isWriter === true);
    // A few lease rounds per TTL: renew early, and notice a free lease soon after it expired.
    this.#leaseTimer = setInterval(() => this.#leaseRound(), Math.max(100, Math.min(500, this.leases.ttlMs / 4)));
    if (this.opts.serveQueries !== false) {
      this.#queries = await QueryService.start({
        nc: this.opts.nc, stream: this.opts.spec.stream, worker: this.id, dataDir: this.opts.dataDir, records: (n) => this.#records.get(n), runners: this.runners,
        freshRecord: async (n) => (await this.catalog.get(n))?.record, registry: this.registry, log: (m) => this.#log(m),
        ...(this.#taker ? { snapshots: this.#taker, isWriter: (key: string) => this.writers.get(key)?.isWriter === true } : {}) })
        .catch((err: unknown) => void this.#log(`queries over NATS are off: ${messageOf(err)}`));
      for (const r of this.runners.values()) this.#queries?.serve(r.name);
    }
    if (this.#taker && this.opts.snapshotEveryMs) {
      this.#schedule = new SnapshotSchedule(this.#taker, this.runners, this.writers, this.opts.snapshotEveryMs, (m) => this.#log(m));
    }
    this.#heartbeat = new Heartbeat(this.registry, { worker: this.id, dataDir: this.opts.dataDir.root, processors: this.opts.processors ?? null }, this.runners, this.writers, (m) => this.#log(m));
  }

  #leaseRound(): void {
    for (const [key, w] of this.writers) {
      void w.tick();
      // A replica prunes from its outbox what the writer has published.
      const r = this.runners.get(key);
      if (r && !w.isWriter && r.outboxPending > 0) r.kickOutbox();
    }
  }

  /** True when placement puts this processor on this worker. */
  holds(name: string): boolean {
    return !this.opts.processors || this.opts.processors.includes(name);
  }

  /** After NATS comes back, every runner reads again from its checkpoint at once. */
  async #watchConnection(): Promise<void> {
    for await (const s of this.opts.nc.status()) {
      if (this.#closed) return;
      if (s.type === "disconnect") this.#log(`NATS disconnected — views keep serving from SQLite; reconnecting`);
      if (s.type === "reconnect") {
        this.#log(`NATS reconnected — resuming every version from its checkpoint, watching the catalog anew`);
        for (const r of this.runners.values()) void r.restartReading();
        this.#feed?.restart();
      }
    }
  }

  /** Retries a catalog write until it succeeds or the worker stops (NATS may be down for a while). */
  #persist(what: string, write: () => Promise<unknown>): void {
    const attempt = (n: number): void => {
      write().catch((err) => {
        if (this.#closed) return;
        this.#log(`${what}: ${messageOf(err)} — retrying`);
        setTimeout(() => attempt(n + 1), Math.min(5000, 200 * 2 ** Math.min(n, 5)));
      });
    };
    attempt(0);
  }

  #log(line: string): void {
    this.opts.log?.(line);
  }

  #enqueue(record: ProcessorRecord, revision?: number): void {
    this.#queue = this.#queue.then(() => this.#reconcile(record, revision)).catch((err) => this.#log(`worker: ${messageOf(err)}`));
  }

  /** Brings running versions in line with one processor's record. */
  async #reconcile(record: ProcessorRecord, revision?: number): Promise<void> {
    if (this.#closed) return;
    this.#records.set(record.name, record);
    try {
      updateCatalogCache(this.opts.dataDir.catalogCache, record, revision);
    } catch (err) {
      this.#log(`cannot write the catalog copy: ${messageOf(err)}`);
    }
    // Placement: every record is known (a stage asks about its upstream), only held ones run here.
    if (!this.holds(record.name)) return;
    for (const v of Object.values(record.versions)) {
      const key = `${record.name}/${v.version}`;
      const runner = this.runners.get(key);
      if (ACTIVE.has(v.state) && !v.error) {
        if (!runner) await this.#startRunner(record.name, v);
      } else if (runner && (v.state === "retired" || v.state === "failed")) {
        this.runners.delete(key);
        await runner.stop();
        await this.writers.get(key)?.close();
        this.writers.delete(key);
        this.#log(`${key}: stopped (${v.state})`);
      }
    }
  }

  async #startRunner(name: string, v: VersionRecord): Promise<void> {
    const key = `${name}/${v.version}`;
    let def;
    let code;
    try {
      code = await this.code.get(v.codeHash, v.codeKind);
      def = await loadProcessor(code, this.opts.dataDir.root + "/code", v.origin);
    } catch (err) {
      const code = (err as { code?: string }).code ?? "";
      if (!CODE_ERRORS.has(code)) {
        // NATS or the disk, not the code: try again later rather than fail the version for good.
        this.#log(`${key}: cannot load code yet (${messageOf(err)}) — retrying`);
        setTimeout(() => {
          const rec = this.#records.get(name);
          if (rec && !this.#closed) this.#enqueue(rec, this.#feed?.revision(name));
        }, 2000).unref();
        return;
      }
      this.#log(`${key}: cannot load code: ${messageOf(err)}`);
      this.#persist(`${key}: recording failure`, () => markFailed(this.catalog, name, v.version, { message: `cannot load code: ${messageOf(err)}`, at: new Date().toISOString() }));
      return;
    }
    const input: InputSpec = v.source ? outputOf(this.opts.spec.stream, v.source.processor, v.source.version) : this.opts.spec;
    const output = outputOf(this.opts.spec.stream, name, v.version);
    const writer = new VersionWriter(name, v.version, { nc: this.opts.nc, catalog: this.catalog, leases: this.leases, output, log: (m) => this.#log(m) });
    const runner = new VersionRunner(v, def, {
      nc: this.opts.nc,
      js: this.js,
      ...(this.opts.bulkNc ? { bulkJs: jetstream(this.opts.bulkNc) } : {}),
      ...(this.#bulkReader ? { bulkReader: this.#bulkReader } : {}),
      jsm: this.jsm,
      dataDir: this.opts.dataDir,
      input,
      code,
      output,
      gate: writer,
      ...(this.#snapshots ? { restore: (file: string) => restoreViewFile(this.#snapshots!, file, name, v, (m) => this.#log(m), this.id) } : {}),
      limits: this.opts.limits,
      ...(this.#liveFirst ? { liveFirst: this.#liveFirst } : {}),
      busyTimeoutMs: this.opts.busyTimeoutMs,
      handlerTimeoutMs: this.opts.handlerTimeoutMs,
      ...(v.source ? { upstreamSettled: () => upstreamSettled(this.#upstreamView(), v.source!) } : {}),
      // Only the version's writer records these; a replica remembers them in case it takes over.
      onCaughtUp: () => {
        this.#log(`${key}: caught up at ${runner.checkpoint}`);
        writer.caughtUp(runner.checkpoint);
      },
      onFailed: (f) => {
        this.#log(`${key}: FAILED ${f.seq ? `at event ${f.seq} (${f.type}) ` : ""}— ${f.message}`);
        writer.failed(f);
      },
      onTrouble: (m) => this.#log(m),
      onSchemaNotes: (fresh) => {
        for (const n of fresh) this.#log(`${key}: warning: ${schemaNoteText(name, n, "log", false)}`);
      },
    });
    writer.subject = runner;
    this.runners.set(key, runner);
    this.writers.set(key, writer);
    this.#log(`${key}: running from checkpoint (${v.state})`);
    void writer.tick();
    this.#queries?.serve(name);
    await runner.start();
  }

  /** What `upstreamSettled` reads: this worker's runners and records, the catalog and the stream. */
  #upstreamView(): UpstreamView {
    return { spec: this.opts.spec, jsm: this.jsm, catalog: this.catalog, runners: this.runners, records: this.#records };
  }

  /** Waits until every queued catalog change has been applied (for tests and `dev`). */
  async settled(): Promise<void> {
    await this.#queue;
  }

  /** Stops every runner, the watch and the stats, and releases the lock. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#feed?.stop();
    clearInterval(this.#cleanup);
    clearInterval(this.#leaseTimer);
    this.#schedule?.close();
    this.#taker?.close();
    await this.#heartbeat?.close();
    await this.#queries?.close();
    await this.#queue.catch(() => {});
    await this.#stats?.close();
    await Promise.all([...this.runners.values()].map((r) => r.stop()));
    this.runners.clear();
    await this.#bulkReader?.close();
    // Leases go back only after the outboxes stopped: the next writer then finds everything we published.
    await Promise.all([...this.writers.values()].map((w) => w.close()));
    this.writers.clear();
    this.releaseLock();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
