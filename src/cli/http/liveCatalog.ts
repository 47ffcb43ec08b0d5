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

const STATS = "stats.";
const RETRY_MS = 2000;
const HEAD_MS = 1000;

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
  #nc: NatsConnection | undefined;
  #catalog: Catalog | undefined;
  #jsm: JetStreamManager | undefined;
  #connected = false;
  #error: string | undefined = "not connected yet";
  #logHead: number | null = null;
  #headTimer: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #headBusy = false;
  #closed = false;
  #cache: { at: number; records: ProcessorRecord[] } | undefined;

  private constructor(private readonly ctx: CliContext, private readonly given: NatsConnection | undefined) {}

  /** Connects (or starts degraded and keeps retrying in the background when NATS is unreachable). */
  static async start(ctx: CliContext, nc?: NatsConnection): Promise<LiveCatalog> {
    const lc = new LiveCatalog(ctx, nc);
    await lc.#connect();
    lc.#headTimer = setInterval(() => void lc.#pollHead(), HEAD_MS);
    return lc;
  }

  async #connect(): Promise<void> {
    if (this.#closed || this.#catalog) return;
    try {
      const nc = this.given ?? (await this.ctx.nats({ reconnectForever: true, name: "kappa-serve", timeoutMs: 1500 }));
      const catalog = await Catalog.open(nc, this.ctx.spec.stream);
      for (const r of await catalog.list()) this.#records.set(r.name, r);
      this.#nc = nc;
      this.#catalog = catalog;
      this.#connected = !nc.isClosed();
      this.#error = undefined;
      const procs = await catalog.watch((r) => this.#setRecord(r));
      this.#stops.push(procs.stop);
      const stats = await catalog.kv.watch({ key: `${STATS}>` });
      this.#stops.push(() => stats.stop());
      void (async () => {
        for await (const e of stats) {
          const key = e.key.slice(STATS.length).replace(/\.(\d+)$/, "/$1");
          if (e.operation === "PUT" && e.length > 0) this.#stats.set(key, e.json<VersionStats>());
          else this.#stats.delete(key);
        }
      })().catch(() => {});
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
      }
    }
    this.#connected = false;
    this.#error = "connection closed";
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

  #setRecord(r: ProcessorRecord): void {
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
      if (r) this.#setRecord(r.record);
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
    clearTimeout(this.#retry);
    for (const stop of this.#stops) stop();
    this.#listeners.clear();
    if (!this.given) await this.ctx.close();
  }
}
