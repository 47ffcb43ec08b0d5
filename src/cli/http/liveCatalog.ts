import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { messageOf } from "../../errors.js";
import { Catalog, readCatalogCache, validateProcessorName, type ProcessorRecord, type RecordSource, type VersionStats } from "../../views/index.js";
import type { CliContext } from "../context.js";

/** Whether the catalog is reachable right now, and why not. */
export interface NatsHealth {
  reachable: boolean;
  url: string;
  error?: string;
  /** Where processor records come from: the live catalog watch, or the worker's local copy. */
  source: "catalog" | "local-copy" | "none";
}

const RETRY_MS = 2000;
const HEAD_MS = 1000;
/** The whole catalog is read again this often, in case a watch stalled without ending (its consumer dropped). */
const RESYNC_MS = 5000;

/**
 * What a long-running server knows of the catalog: processor records and worker stats kept current by
 * KV watches (so requests never wait on NATS), the stream's head, and the worker's local copy of the
 * catalog when NATS is down. Reconnects on its own.
 */
export class LiveCatalog {
  readonly #records = new Map<string, ProcessorRecord>();
  readonly #stats = new Map<string, VersionStats>();
  readonly #listeners = new Set<(r: ProcessorRecord) => void>();
  readonly #stops: (() => void)[] = [];
  readonly #restarts: (() => void)[] = [];
  readonly #revisions = new Map<string, number>();
  #nc: NatsConnection | undefined;
  #catalog: Catalog | undefined;
  #jsm: JetStreamManager | undefined;
  #connected = false;
  #error: string | undefined = "not connected yet";
  #logHead: number | null = null;
  #headTimer: NodeJS.Timeout | undefined;
  #resyncTimer: NodeJS.Timeout | undefined;
  #resyncing = false;
  #retry: NodeJS.Timeout | undefined;
  #headBusy = false;
  #closed = false;
  #cache: { at: number; records: ProcessorRecord[] } | undefined;

  private constructor(private readonly ctx: CliContext, private readonly given: NatsConnection | undefined, private readonly log: (line: string) => void) {}

  /** Connects (or starts degraded and keeps retrying in the background when NATS is unreachable). */
  static async start(ctx: CliContext, nc?: NatsConnection, log: (line: string) => void = () => {}): Promise<LiveCatalog> {
    const lc = new LiveCatalog(ctx, nc, log);
    await lc.#connect();
    lc.#headTimer = setInterval(() => void lc.#pollHead(), HEAD_MS);
    lc.#resyncTimer = setInterval(() => void lc.#resync(), RESYNC_MS);
    return lc;
  }

  async #connect(): Promise<void> {
    if (this.#closed || this.#catalog) return;
    try {
      const nc = this.given ?? (await this.ctx.nats({ reconnectForever: true, name: "kappa-serve", timeoutMs: 1500 }));
      const catalog = await Catalog.open(nc, this.ctx.spec.stream);
      for (const e of await catalog.entries()) this.#setRecord(e.record, e.revision);
      this.#nc = nc;
      this.#catalog = catalog;
      this.#connected = !nc.isClosed();
      this.#error = undefined;
      // Both watches start again by themselves when they end (NATS restarted) and skip malformed values.
      const trouble = (m: string) => this.log(m);
      const procs = catalog.watch((r, rev) => this.#setRecord(r, rev), trouble);
      this.#stops.push(() => procs.stop());
      this.#restarts.push(() => procs.restart());
      const stats = catalog.watchStats((name, version, st) => {
        if (st) this.#stats.set(`${name}/${version}`, st);
        else this.#stats.delete(`${name}/${version}`);
      }, trouble);
      this.#stops.push(() => stats.stop());
      this.#restarts.push(() => stats.restart());
      void this.#followStatus(nc);
      this.#jsm = await jetstreamManager(nc);
      await this.#pollHead();
    } catch (err) {
      this.#error = messageOf(err);
      this.#connected = false;
      if (!this.#closed && !this.#catalog) this.#retry = setTimeout(() => void this.#connect(), RETRY_MS);
    }
  }

  async #followStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (this.#closed) return;
      if (s.type === "disconnect" || s.type === "staleConnection") {
        this.#connected = false;
        this.#error = `disconnected from ${this.ctx.natsUrl}; reconnecting`;
      } else if (s.type === "reconnect") {
        this.#connected = true;
        this.#error = undefined;
        for (const restart of this.#restarts) restart();
      }
    }
    this.#connected = false;
    this.#error = "connection closed";
  }

  async #resync(): Promise<void> {
    if (!this.#catalog || !this.#connected || this.#resyncing) return;
    this.#resyncing = true;
    try {
      for (const e of await this.#catalog.entries()) this.#setRecord(e.record, e.revision);
    } catch {
      // NATS trouble shows up in the connection status; the watch and the next round catch up.
    } finally {
      this.#resyncing = false;
    }
  }

  async #pollHead(): Promise<void> {
    if (!this.#jsm || !this.#connected || this.#headBusy) return;
    this.#headBusy = true;
    try {
      this.#logHead = (await this.#jsm.streams.info(this.ctx.spec.stream)).state.last_seq;
    } catch {
      // NATS trouble shows up in the connection status; the last known head stays.
    } finally {
      this.#headBusy = false;
    }
  }

  /** Keeps a record unless a newer revision of it is known (watch restarts hand over everything again). */
  #setRecord(r: ProcessorRecord, revision: number): void {
    if (revision <= (this.#revisions.get(r.name) ?? 0)) return;
    this.#revisions.set(r.name, revision);
    this.#records.set(r.name, r);
    for (const l of this.#listeners) l(r);
  }

  /** The worker's local copy, re-read at most once a second. */
  #localCopy(): ProcessorRecord[] {
    const now = Date.now();
    if (!this.#cache || now - this.#cache.at > 1000) this.#cache = { at: now, records: readCatalogCache(this.ctx.dataDir.catalogCache)?.records ?? [] };
    return this.#cache.records;
  }

  /** Whether NATS answers, and where records come from. */
  health(): NatsHealth {
    const source = this.#catalog ? "catalog" : this.#localCopy().length > 0 ? "local-copy" : "none";
    return { reachable: this.#connected, url: this.ctx.natsUrl, ...(this.#error ? { error: this.#error } : {}), source };
  }

  /** Every processor, by name. */
  list(): ProcessorRecord[] {
    const byName = new Map<string, ProcessorRecord>();
    for (const r of this.#localCopy()) byName.set(r.name, r);
    for (const r of this.#records.values()) byName.set(r.name, r);
    return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** One processor's record, without waiting on NATS. */
  get(name: string): ProcessorRecord | undefined {
    return this.#records.get(name) ?? this.#localCopy().find((r) => r.name === name);
  }

  /** Where queries resolve versions: the watched records; the catalog itself for a processor deployed a moment ago. */
  readonly records: RecordSource = async (name) => {
    validateProcessorName(name);
    const known = this.get(name);
    if (known) return known;
    if (this.#catalog && this.#connected) {
      const r = await this.#catalog.get(name).catch(() => null);
      if (r) this.#setRecord(r.record, r.revision);
      return r?.record ?? null;
    }
    return null;
  };

  /** What the worker last reported for one version. */
  stats(name: string, version: number): VersionStats | undefined {
    return this.#stats.get(`${name}/${version}`);
  }

  /** The NATS connection once one was made (it reconnects on its own), for routes that publish. */
  get connection(): NatsConnection | undefined {
    return this.#nc;
  }

  /** The stream's last sequence, when NATS has answered at least once. */
  get logHead(): number | null {
    return this.#logHead;
  }

  /** Calls `fn` on every record change (promotions, new versions); returns the unsubscribe. */
  onChange(fn: (r: ProcessorRecord) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Stops the watches and timers; closes the connection only if this catalog opened it through the context. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#headTimer);
    clearInterval(this.#resyncTimer);
    clearTimeout(this.#retry);
    for (const stop of this.#stops) stop();
    this.#listeners.clear();
    if (!this.given) await this.ctx.close();
  }
}
