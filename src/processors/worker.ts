import { existsSync } from "node:fs";
import { LiveFirst } from "./liveFirst.js";
import { hostname } from "node:os";
import { jetstream, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { messageOf } from "../errors.js";
import { ensureStream, type BatchLimits, type StreamSpec } from "../log/index.js";
import { Catalog, DataDir, WorkerRegistry, deleteUnread, hasLeaseFile, markFailed, updateCatalogCache, type ProcessorRecord, type VersionRecord } from "../views/index.js";
import { CodeStore } from "./codeStore.js";
import { loadProcessor } from "./load.js";
import { VersionRunner, type InputSpec } from "./runner.js";
import { outputOf } from "./derived.js";
import { CatalogFeed } from "./catalogFeed.js";
import { acquireWorkerLock, type WorkerLock } from "./workerLock.js";
import { StatsReporter } from "./stats.js";
import { LeaseTable, DEFAULT_LEASE_TTL_MS } from "./lease.js";
import { VersionWriter } from "./writer.js";
import { Heartbeat } from "./heartbeat.js";
import { QueryService } from "./queryService.js";
import { SnapshotStore, DEFAULT_SNAPSHOT_KEEP } from "./snapshots.js";
import { adoptSeedFile } from "./seed.js";
import { SnapshotSchedule } from "./snapshotSchedule.js";

/** How a worker runs. */
export interface WorkerOptions {
  nc: NatsConnection;
  spec: StreamSpec;
  dataDir: DataDir;
  limits?: Partial<BatchLimits>;
  /** How long a view write waits for a SQLite lock before it is retried (default 5000 ms). */
  busyTimeoutMs?: number;
  /** A handler that does not return within this fails its version; its apply thread is stopped (default 10 s). */
  handlerTimeoutMs?: number;
  /**
   * A second connection for versions still catching up: a rebuild's backlog then never sits in the socket
   * ahead of a live version's next event (the client parses a socket's bytes in order). Default: `nc`.
   */
  bulkNc?: NatsConnection;
  /** One line per notable thing (deploys seen, catch-ups, failures, retries). */
  log?: (line: string) => void;
  /** How often the whole catalog is read again, in case the watch stalled (default 5000 ms). */
  resyncMs?: number;
  /** How often retired versions' files are looked at for deletion (default 1000 ms). */
  sweepMs?: number;
  /** The data dir's lock, already taken by the caller (`kappa dev` takes it before anything else); the worker then leaves releasing it to the caller. */
  lock?: WorkerLock;
  /** This worker's name among several (default: host name and data dir). */
  workerId?: string;
  /** Placement: hold only these processors (default: all). */
  processors?: string[];
  /** Writer lease time to live; another replica takes over about this long after a writer stops (default 3000 ms). */
  leaseTtlMs?: number;
  /** Answer queries on the held views over NATS (`kappa query --remote`); default true. */
  serveQueries?: boolean;
  /** Snapshot every written version this often (default: only when asked, `kappa snapshot`). */
  snapshotEveryMs?: number;
  /** Snapshots kept per version (default 3). */
  snapshotKeep?: number;
}

/** A worker's default id: the host and the data dir, stable across restarts of the same worker. */
export function defaultWorkerId(dataDir: DataDir): string {
  return `${hostname()}:${dataDir.root}`;
}

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
  readonly #waitingForReaders = new Set<string>();
  #leaseTimer: NodeJS.Timeout | undefined;
  #stats: StatsReporter | undefined;
  #heartbeat: Heartbeat | undefined;
  #queries: QueryService | undefined;
  #snapshots: SnapshotStore | undefined;
  #schedule: SnapshotSchedule | undefined;
  #closed = false;
  /** Live versions first: rebuilds read in small pulls and apply at lower priority while live ones have events. */
  #liveFirst: LiveFirst | undefined;

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
    // A new replica seeds missing view files from snapshots; without the bucket it replays the whole log.
    this.#snapshots = await SnapshotStore.open(this.opts.nc, this.opts.spec.stream, this.opts.spec.replicas).catch((err: unknown) => void this.#log(`snapshots are off: ${messageOf(err)}`));
    this.#feed = new CatalogFeed(this.catalog, (r, rev) => this.#enqueue(r, rev), (m) => this.#log(m), this.opts.resyncMs);
    await this.#feed.read();
    await this.#queue;
    this.#feed.follow();
    this.#cleanup = setInterval(() => this.#deleteRetired(), this.opts.sweepMs ?? 1000);
    void this.#watchConnection();
    this.#stats = new StatsReporter(this.catalog, this.jsm, this.runners, (m) => this.#log(m), (key) => this.writers.get(key)?.isWriter === true);
    // A few lease rounds per TTL: renew early, and notice a free lease soon after it expired.
    this.#leaseTimer = setInterval(() => this.#leaseRound(), Math.max(100, Math.min(500, this.leases.ttlMs / 4)));
    if (this.opts.serveQueries !== false) {
      this.#queries = await QueryService.start({ nc: this.opts.nc, stream: this.opts.spec.stream, worker: this.id, dataDir: this.opts.dataDir, records: (n) => this.#records.get(n), runners: this.runners, ...(this.#snapshots ? { snapshots: { store: this.#snapshots, keep: this.opts.snapshotKeep ?? DEFAULT_SNAPSHOT_KEEP } } : {}) })
        .catch((err: unknown) => void this.#log(`queries over NATS are off: ${messageOf(err)}`));
      for (const r of this.runners.values()) this.#queries?.serve(r.name);
    }
    if (this.#snapshots && this.opts.snapshotEveryMs) {
      this.#schedule = new SnapshotSchedule(this.#snapshots, this.opts.dataDir, this.runners, this.writers, this.opts.snapshotEveryMs, this.opts.snapshotKeep ?? DEFAULT_SNAPSHOT_KEEP, (m) => this.#log(m));
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
      jsm: this.jsm,
      dataDir: this.opts.dataDir,
      input,
      code,
      output,
      gate: writer,
      ...(this.#snapshots ? { restore: (file: string) => this.#restore(file, name, v) } : {}),
      limits: this.opts.limits,
      ...(this.#liveFirst ? { liveFirst: this.#liveFirst } : {}),
      busyTimeoutMs: this.opts.busyTimeoutMs,
      handlerTimeoutMs: this.opts.handlerTimeoutMs,
      ...(v.source ? { upstreamSettled: () => this.#upstreamSettled(v.source!) } : {}),
      // Only the version's writer records these; a replica remembers them in case it takes over.
      onCaughtUp: () => {
        this.#log(`${key}: caught up at ${runner.checkpoint}`);
        writer.caughtUp();
      },
      onFailed: (f) => {
        this.#log(`${key}: FAILED ${f.seq ? `at event ${f.seq} (${f.type}) ` : ""}— ${f.message}`);
        writer.failed(f);
      },
      onTrouble: (m) => this.#log(m),
    });
    writer.subject = runner;
    this.runners.set(key, runner);
    this.writers.set(key, writer);
    this.#log(`${key}: running from checkpoint (${v.state})`);
    void writer.tick();
    this.#queries?.serve(name);
    await runner.start();
  }

  /**
   * Whether an upstream version has caught up with its own input and published every emit. When it runs
   * here, its runner says so now; otherwise its catalog state and the stats its worker last reported,
   * whose checkpoint must reach the upstream's input head as it is now: a report can be old (its worker
   * stopped or died after saying "caught up"), and events that came after it are not in our input yet.
   */
  async #upstreamSettled(src: { processor: string; version: number }): Promise<boolean> {
    const local = this.runners.get(`${src.processor}/${src.version}`);
    if (local) return local.caughtUp && local.pending === 0 && local.outboxEmpty;
    const up = this.#records.get(src.processor)?.versions[String(src.version)];
    if (up?.state !== "caught-up" && up?.state !== "live") return false;
    const stats = await this.catalog.stats(src.processor, src.version).catch(() => null);
    if (stats === null || !stats.caughtUp || stats.outbox !== 0) return false;
    const input = up.source ? outputOf(this.opts.spec.stream, up.source.processor, up.source.version) : this.opts.spec;
    const head = (await this.jsm.streams.info(input.stream)).state.last_seq;
    return stats.checkpoint >= Math.min(head, up.untilSeq ?? head);
  }

  async #restore(file: string, name: string, v: VersionRecord): Promise<number | null> {
    const s = await this.#snapshots!.restore(file, name, v.version, v.codeHash);
    if (s) this.#log(`${name}/${v.version}: joined from the snapshot at ${s.checkpoint}; replaying only the tail`);
    if (s || !v.seed) return s?.checkpoint ?? null;
    // A frozen version built for `query --as-of` starts from another version's snapshot at or before its end.
    const seed = await this.#snapshots!.restore(file, name, v.seed.version, v.codeHash, v.untilSeq ?? v.seed.checkpoint);
    if (!seed) return null;
    adoptSeedFile(file, v);
    this.#log(`${name}/${v.version}: started from v${v.seed.version}'s snapshot at ${seed.checkpoint}; replaying only the tail`);
    return seed.checkpoint;
  }

  /** Deletes files of retired versions once no query holds them (see views/leases.ts); says once when a reader makes it wait. */
  #deleteRetired(): void {
    for (const rec of this.#records.values()) {
      for (const v of Object.values(rec.versions)) {
        const key = `${rec.name}/${v.version}`;
        if (v.state !== "retired" || this.runners.has(key)) continue;
        const file = this.opts.dataDir.viewFile(rec.name, v.version);
        const dir = this.opts.dataDir.viewsOf(rec.name);
        if (!existsSync(file) && !hasLeaseFile(dir, v.version)) continue;
        try {
          if (deleteUnread(dir, v.version, [file, `${file}-wal`, `${file}-shm`])) {
            this.#waitingForReaders.delete(key);
            this.#log(`${key}: retired, file deleted`);
          } else if (!this.#waitingForReaders.has(key)) {
            this.#waitingForReaders.add(key);
            this.#log(`${key}: retired; a query still reads it — the file goes when it is done`);
          }
        } catch (err) {
          this.#log(`${key}: cannot delete the retired file yet: ${messageOf(err)}`);
        }
      }
    }
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
    await this.#heartbeat?.close();
    await this.#queries?.close();
    await this.#queue.catch(() => {});
    await this.#stats?.close();
    await Promise.all([...this.runners.values()].map((r) => r.stop()));
    this.runners.clear();
    // Leases go back only after the outboxes stopped: the next writer then finds everything we published.
    await Promise.all([...this.writers.values()].map((w) => w.close()));
    this.writers.clear();
    this.releaseLock();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
