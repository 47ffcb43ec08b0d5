import type { Database as Db, Statement } from "better-sqlite3";
import type { RawEvent } from "../log/rawEvent.js";
import type { SchemaNote } from "../views/catalogTypes.js";
import type { ProcessorDefinition } from "./define.js";
import { newestSchemaVersion } from "./upcast.js";
import { schemaNoteText } from "./schemaCheck.js";

/** The schema version a header gives: 1 when absent, 0 when it is not a positive integer (as `kappa log types` counts). */
export function versionOfHeader(text: string | undefined): number {
  if (!text) return 1;
  const n = /^\d+$/.test(text) ? Number(text) : 0;
  return Number.isSafeInteger(n) && n >= 1 ? n : 0;
}

/**
 * The build's schema check: while a version applies its events it notes every event of a handled type
 * whose schema version its code has no upcaster for, so `kappa deploy` needs no scan of its own. Counts
 * are written in the batch's transaction (a rolled-back batch counts nothing, a restart resumes the
 * counts), so they are exact for the events applied. An event without a version header costs one scan
 * of its header bytes.
 */
export class SchemaWatch {
  readonly #totals = new Map<string, SchemaNote>();
  readonly #batch = new Map<string, SchemaNote>();
  readonly #upsert: Statement;
  #changed = false;

  constructor(private readonly def: ProcessorDefinition, db: Db) {
    this.#upsert = db.prepare("INSERT INTO kappa_schema_versions (type, version, count, first_seq, last_seq) VALUES (?, ?, ?, ?, ?) ON CONFLICT (type, version) DO UPDATE SET count = count + excluded.count, last_seq = excluded.last_seq");
    for (const r of db.prepare("SELECT type, version, count, first_seq, last_seq FROM kappa_schema_versions ORDER BY type, version").all() as { type: string; version: number; count: number; first_seq: number; last_seq: number }[]) {
      this.#totals.set(`${r.type}\u0000${r.version}`, { type: r.type, version: r.version, count: r.count, firstSeq: r.first_seq, lastSeq: r.last_seq, newest: newestSchemaVersion(def, r.type) });
    }
  }

  /** What the version's events held so far, sorted by type and version. */
  get notes(): SchemaNote[] {
    return [...this.#totals.values()].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : a.version - b.version)).map((n) => ({ ...n }));
  }

  /** Whether the last committed batch changed the notes (then the runner hears of them). */
  takeChanged(): boolean {
    const c = this.#changed;
    this.#changed = false;
    return c;
  }

  /** A transaction begins: what a rolled-back one noted is forgotten. */
  begin(): void {
    this.#batch.clear();
  }

  /** The version of an event the code cannot upcast, or null when it can (inside the transaction). */
  observe(raw: RawEvent): SchemaNote | null {
    const h = raw.schemaHeader;
    if (h === undefined) return null;
    const version = versionOfHeader(h);
    const newest = newestSchemaVersion(this.def, raw.type);
    if (version !== 0 && version <= newest) return null;
    const key = `${raw.type}\u0000${version}`;
    let n = this.#batch.get(key);
    if (!n) this.#batch.set(key, (n = { type: raw.type, version, count: 0, firstSeq: raw.seq, lastSeq: raw.seq, newest }));
    n.count++;
    n.lastSeq = raw.seq;
    return n;
  }

  /** Writes the transaction's counts (called inside it, after its events). */
  write(): void {
    for (const n of this.#batch.values()) this.#upsert.run(n.type, n.version, n.count, n.firstSeq, n.lastSeq);
  }

  /** The transaction committed: its counts join the totals. */
  committed(): void {
    for (const [key, n] of this.#batch) {
      const t = this.#totals.get(key);
      if (t) {
        t.count += n.count;
        t.lastSeq = n.lastSeq;
      } else this.#totals.set(key, { ...n });
      this.#changed = true;
    }
    this.#batch.clear();
  }

  /** For a poison event: what to add to its message when its schema version is one the code cannot upcast. */
  explain(raw: RawEvent): string {
    const version = versionOfHeader(raw.schemaHeader);
    const newest = newestSchemaVersion(this.def, raw.type);
    // An unreadable header on a type with upcasters already fails in the upcaster, which says so.
    if ((version !== 0 && version <= newest) || (version === 0 && newest > 1)) return "";
    return ` — ${schemaNoteText(this.def.name, { type: raw.type, version, newest }, "event")}`;
  }
}
