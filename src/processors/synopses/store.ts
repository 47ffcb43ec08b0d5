import type { Database } from "better-sqlite3";
import { isPaged, sliceSegments } from "./paged.js";
import { isMissingTable, statement } from "./statements.js";
import type { Synopsis } from "./synopsis.js";

/** What a store needs from the processor context: the batch's database handle and the processor's name (for seeds). */
export interface StateContext {
  db: Database;
  processor?: string;
}

/** How to make a synopsis and read one back: the kind a store holds. */
export interface SynopsisKind<S extends Synopsis> {
  /** A fresh, empty synopsis; `seed` is `<processor>/<store name>/<key>` for the ones that draw random numbers. */
  create(seed: string): S;
  /** Reads bytes written by the synopsis's `serialize()`. */
  deserialize(bytes: Uint8Array): S;
}

/** Options of a {@link SynopsisStore}. */
export interface SynopsisStoreOptions<S extends Synopsis> extends SynopsisKind<S> {
  /** Unique within the processor; the state lives in `kappa_state` under `synopsis:<name>`. */
  name: string;
  /** Deserialized synopses kept per database handle (LRU), default 64. */
  cacheSize?: number;
  /** Overrides the `kappa_state.name` the store writes under (windows keep their synopses beside their state). */
  stateName?: string;
}

interface Entry<S> {
  s: S;
  epoch: number;
  revision: number;
  /** The bytes kappa_state holds for this key, to find the pages a change touched (plain synopses). */
  bytes: Uint8Array;
  /** Their length (kept for paged synopses, whose `bytes` go stale: they report their changes instead). */
  length: number;
}

/*
 * Why the cache is correct. Every change is written through to kappa_state inside the caller's
 * transaction, so a commit always holds it. What a rollback could break is the in-memory copy: it
 * would still show the undone change. So each write also stamps a row in a TEMP table with a fresh,
 * never-reused epoch; TEMP tables take part in the same transaction (and savepoints). A cached
 * entry is used only while the stamp still equals its epoch: after a rollback the stamp reverts,
 * the epochs differ, and the entry is read again from kappa_state.
 */
const TEMP_DDL =
  "CREATE TEMP TABLE IF NOT EXISTS kappa_synopsis_cache (name TEXT NOT NULL, key TEXT NOT NULL, epoch INTEGER NOT NULL, PRIMARY KEY (name, key)) WITHOUT ROWID";
const CHECK = "SELECT epoch FROM temp.kappa_synopsis_cache WHERE name = ? AND key = ?";
const MARK = "INSERT INTO temp.kappa_synopsis_cache (name, key, epoch) VALUES (?, ?, ?) ON CONFLICT (name, key) DO UPDATE SET epoch = excluded.epoch";
const UNMARK = "DELETE FROM temp.kappa_synopsis_cache WHERE name = ? AND key = ?";
const LOAD = "SELECT value FROM kappa_state WHERE name = ? AND key >= ? AND key < ? ORDER BY key";
const SAVE = "INSERT INTO kappa_state (name, key, value) VALUES (?, ?, ?) ON CONFLICT (name, key) DO UPDATE SET value = excluded.value";
const REMOVE = "DELETE FROM kappa_state WHERE name = ? AND key >= ? AND key < ?";

/*
 * A synopsis's bytes are stored in pages of PAGE bytes, one kappa_state row each
 * (key `<JSON of the key>` 0x01 `<page number, 6 hex digits>`), and a change rewrites only the
 * pages whose bytes differ: a Count-Min add touches a few of its hundreds of pages.
 */
const PAGE = 1024;
const pageKey = (key: string, page: number) => `${JSON.stringify(key)}\u0001${page.toString(16).padStart(6, "0")}`;
const pagesFrom = (key: string, page: number) => pageKey(key, page);
const pagesEnd = (key: string) => `${JSON.stringify(key)}\u0002`;
const EMPTY = new Uint8Array(0);

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

let lastEpoch = 0;
const tempReady = new WeakSet<Database>();

/**
 * Keeps synopses in `kappa_state`, a few rows per key, inside the caller's transaction: every change
 * is written through before `update` returns, so a crash after any commit loses nothing. A bounded
 * per-handle cache spares re-reading and re-parsing the state on every event.
 */
export class SynopsisStore<S extends Synopsis> {
  readonly name: string;
  readonly stateName: string;
  readonly #kind: SynopsisKind<S>;
  readonly #cacheSize: number;
  readonly #caches = new WeakMap<Database, Map<string, Entry<S>>>();

  constructor(opts: SynopsisStoreOptions<S>) {
    this.name = opts.name;
    this.stateName = opts.stateName ?? `synopsis:${opts.name}`;
    this.#kind = { create: opts.create, deserialize: opts.deserialize };
    this.#cacheSize = Math.max(1, opts.cacheSize ?? 64);
  }

  /** Applies `fn` to the synopsis of `key` (created empty on first use) and writes it back if it changed. */
  update<R>(ctx: StateContext, key: string, fn: (s: S) => R): R {
    const entry = this.#acquire(ctx, key, true)!;
    const result = fn(entry.s);
    if (entry.s.revision !== entry.revision) this.#write(ctx.db, key, entry);
    return result;
  }

  /** The synopsis of `key`, or undefined if none was stored. Read-only: change it through `update`. */
  get(ctx: StateContext, key: string): S | undefined {
    return this.#acquire(ctx, key, false)?.s;
  }

  /** Stores `s` as the synopsis of `key`, replacing any other. */
  put(ctx: StateContext, key: string, s: S): void {
    this.#retry(ctx.db, () => this.#check(ctx.db, key));
    statement(ctx.db, REMOVE).run(this.stateName, pagesFrom(key, 0), pagesEnd(key));
    if (isPaged(s)) s.takeDirty(); // everything is written below
    const entry = { s, epoch: 0, revision: s.revision, bytes: EMPTY, length: 0 };
    this.#writeAll(ctx.db, key, entry, asBuffer(s.serialize()));
    this.#remember(ctx.db, key, entry);
  }

  /** Removes the synopsis of `key`. */
  delete(ctx: StateContext, key: string): void {
    this.#retry(ctx.db, () => this.#check(ctx.db, key));
    statement(ctx.db, REMOVE).run(this.stateName, pagesFrom(key, 0), pagesEnd(key));
    statement(ctx.db, UNMARK).run(this.stateName, key);
    this.#cache(ctx.db).delete(key);
  }

  #cache(db: Database): Map<string, Entry<S>> {
    let c = this.#caches.get(db);
    if (!c) this.#caches.set(db, (c = new Map()));
    return c;
  }

  /** Runs a step that writes nothing; if a rollback dropped the TEMP table, recreates it and tries once more. */
  #retry<R>(db: Database, step: () => R): R {
    try {
      if (!tempReady.has(db)) this.#createTemp(db);
      return step();
    } catch (err) {
      if (!isMissingTable(err)) throw err;
      this.#caches.delete(db);
      this.#createTemp(db);
      return step();
    }
  }

  #createTemp(db: Database): void {
    db.exec(TEMP_DDL);
    tempReady.add(db);
  }

  /** The stamp of `key` (also proves the TEMP table exists before anything is written). */
  #check(db: Database, key: string): unknown {
    return statement(db, CHECK).pluck().safeIntegers(false).get(this.stateName, key);
  }

  #acquire(ctx: StateContext, key: string, create: boolean): Entry<S> | undefined {
    const { db } = ctx;
    const stamp = this.#retry(db, () => this.#check(db, key));
    const cache = this.#cache(db);
    const cached = cache.get(key);
    if (cached && cached.epoch === stamp && cached.s.revision === cached.revision) {
      cache.delete(key);
      cache.set(key, cached);
      return cached;
    }
    const pages = statement(db, LOAD).pluck().all(this.stateName, pagesFrom(key, 0), pagesEnd(key)) as Buffer[];
    if (pages.length === 0 && !create) {
      cache.delete(key);
      return undefined;
    }
    const bytes = pages.length === 0 ? EMPTY : pages.length === 1 ? pages[0]! : Buffer.concat(pages);
    const s = pages.length > 0 ? this.#kind.deserialize(bytes) : this.#kind.create(`${ctx.processor ?? ""}/${this.name}/${key}`);
    const entry = { s, epoch: this.#mark(db, key), revision: s.revision, bytes, length: bytes.length };
    this.#remember(db, key, entry);
    return entry;
  }

  #remember(db: Database, key: string, entry: Entry<S>): void {
    const cache = this.#cache(db);
    cache.delete(key);
    cache.set(key, entry);
    while (cache.size > this.#cacheSize) {
      const oldest = cache.keys().next().value as string;
      cache.delete(oldest);
      statement(db, UNMARK).run(this.stateName, oldest);
    }
  }

  #write(db: Database, key: string, entry: Entry<S>): void {
    const s = entry.s;
    if (!isPaged(s)) {
      this.#writeAll(db, key, entry, asBuffer(s.serialize()));
      return;
    }
    const dirty = s.takeDirty();
    if (dirty === "all") {
      this.#writeAll(db, key, entry, asBuffer(s.serialize()));
      return;
    }
    const segments = s.segments();
    const length = segments.reduce((n, seg) => n + seg.length, 0);
    const pages = new Set<number>();
    for (let i = 0; i < dirty.length; i += 2) {
      const last = Math.min(dirty[i + 1]!, length) - 1;
      for (let p = Math.floor(dirty[i]! / PAGE); p * PAGE <= last; p++) pages.add(p);
    }
    const save = statement(db, SAVE);
    for (const p of [...pages].sort((a, b) => a - b)) {
      save.run(this.stateName, pageKey(key, p), sliceSegments(segments, p * PAGE, Math.min(length, (p + 1) * PAGE)));
    }
    this.#trim(db, key, entry.length, length);
    entry.bytes = EMPTY;
    this.#written(db, key, entry, length);
  }

  /** Writes the pages of `next` that differ from what is stored (all of them for a paged synopsis, whose old bytes are not kept). */
  #writeAll(db: Database, key: string, entry: Entry<S>, next: Buffer): void {
    const prev = asBuffer(entry.bytes);
    const save = statement(db, SAVE);
    for (let at = 0, page = 0; at < next.length; at += PAGE, page++) {
      const chunk = next.subarray(at, at + PAGE);
      if (!chunk.equals(prev.subarray(at, at + PAGE))) save.run(this.stateName, pageKey(key, page), chunk);
    }
    this.#trim(db, key, entry.length, next.length);
    entry.bytes = isPaged(entry.s) ? EMPTY : next;
    this.#written(db, key, entry, next.length);
  }

  /** Deletes the pages past a shorter state's end. */
  #trim(db: Database, key: string, before: number, after: number): void {
    if (before > after) statement(db, REMOVE).run(this.stateName, pagesFrom(key, Math.ceil(after / PAGE)), pagesEnd(key));
  }

  #written(db: Database, key: string, entry: Entry<S>, length: number): void {
    entry.length = length;
    entry.epoch = this.#mark(db, key);
    entry.revision = entry.s.revision;
  }

  #mark(db: Database, key: string): number {
    const epoch = ++lastEpoch;
    statement(db, MARK).run(this.stateName, key, epoch);
    return epoch;
  }
}
