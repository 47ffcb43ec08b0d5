import { deepStrictEqual } from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Database as Db } from "better-sqlite3";
import type { RawEvent } from "../log/index.js";
import { BatchApplier, bundleProcessor, hashCode, loadProcessor, validateDefinition, type Poison, type ProcessorDefinition } from "../processors/index.js";
import { ViewWriter, digestDb, keyOrder, quoteIdent } from "../views/index.js";

/** An event given to a spec: its type and data; `time` and `id` default to values derived from its position. */
export interface TestEvent {
  type: string;
  data: unknown;
  time?: string;
  id?: string;
  /** The schema version of its type (absent means 1), as `kappa append --schema-version` would store it. */
  schemaVersion?: number;
}

/** A row as better-sqlite3 returns it. */
export type Row = Record<string, unknown>;

/** The built view, for assertions a table listing cannot express. */
export interface TestView {
  /** better-sqlite3 handle on the view file (the same file the applier wrote). */
  db: Db;
  /** Every row of a table, in key order (primary key, else every column). */
  rows(table: string): Row[];
  /** A named query's answer, parameters bound as `kappa query <processor> <name> --param k=v` would. */
  query(name: string, params?: Record<string, unknown>): Row[];
  /** Events the processor emitted with `ctx.emit`, in order. */
  emitted(): { type: string; data: unknown }[];
  /** Events the processor skipped under `onError: "skip"`, with their errors. */
  deadLetters(): { seq: number; type: string; error: string }[];
}

/** Times start here and advance a second per event, so specs are deterministic. */
const BASE_TIME = Date.parse("2024-01-01T00:00:00.000Z");
const enc = new TextEncoder();

function toRaw(events: readonly TestEvent[]): RawEvent[] {
  return events.map((e, i) => ({
    seq: i + 1,
    type: e.type,
    time: e.time ?? new Date(BASE_TIME + i * 1000).toISOString(),
    id: e.id ?? `spec-${i + 1}`,
    data: enc.encode(JSON.stringify(e.data ?? null)),
    ...(e.schemaVersion !== undefined ? { schemaHeader: String(e.schemaVersion) } : {}),
  }));
}

/** One build of the view: a real SQLite file in a temp dir, written by the runner's BatchApplier. */
class Build {
  readonly dir = mkdtempSync(join(tmpdir(), "kappa-spec-"));
  readonly writer: ViewWriter;
  readonly applier: BatchApplier;
  poison: Poison | null = null;
  constructor(readonly def: ProcessorDefinition) {
    this.writer = ViewWriter.open(join(this.dir, "v1.sqlite"), { processor: def.name, version: 1, codeHash: "spec" }, def.schema);
    this.applier = new BatchApplier(this.writer, def, 1);
  }
  deliver(batch: RawEvent[]): void {
    if (this.poison || batch.length === 0) return;
    this.poison = this.applier.apply(batch);
  }
  close(): void {
    this.writer.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function viewOf(def: ProcessorDefinition, db: Db): TestView {
  return {
    db,
    rows(table) {
      const { orderBy } = keyOrder(db, table);
      if (!db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").get(table)) throw new Error(`${def.name} has no table ${table}`);
      return db.prepare(`SELECT * FROM ${quoteIdent(table)} ORDER BY ${orderBy}`).all() as Row[];
    },
    query(name, params = {}) {
      const sql = def.queries?.[name];
      if (sql === undefined) throw new Error(`${def.name} has no named query ${name} (it has: ${Object.keys(def.queries ?? {}).join(", ") || "none"})`);
      return db.prepare(sql).all(params) as Row[];
    },
    emitted() {
      return (db.prepare("SELECT type, data FROM kappa_outbox ORDER BY seq, idx").all() as { type: string; data: string }[]).map((r) => ({ type: r.type, data: JSON.parse(r.data) }));
    },
    deadLetters() {
      return db.prepare("SELECT seq, type, error FROM kappa_dead_letters ORDER BY seq").all() as { seq: number; type: string; error: string }[];
    },
  };
}

/** The `when` step of a spec: the assertions, each of which builds the view and checks it. */
export class WhenStep {
  constructor(private readonly def: () => Promise<ProcessorDefinition>, private readonly given: readonly TestEvent[], private readonly events: readonly TestEvent[]) {}

  /**
   * Builds the view twice — once delivering every event once, once delivering every event twice (as an
   * ordered consumer's redelivery would) in batches of one — requires identical content digests, then
   * runs `check` on the view. A processor that halts on an event fails the spec with that event's error.
   */
  async #build(check: (view: TestView, poison: Poison | null) => void | Promise<void>): Promise<void> {
    const def = await this.def();
    const given = toRaw([...this.given, ...this.events]);
    const split = this.given.length;
    const once = new Build(def);
    const twice = new Build(def);
    try {
      once.deliver(given.slice(0, split));
      once.deliver(given.slice(split));
      for (const e of given) {
        twice.deliver([e]);
        twice.deliver([e]);
      }
      twice.deliver(given);
      const a = digestDb(once.writer.db);
      const b = digestDb(twice.writer.db);
      if (a.digest !== b.digest || a.platform.digest !== b.platform.digest || (once.poison?.event.seq ?? 0) !== (twice.poison?.event.seq ?? 0)) {
        const table = a.tables.find((t, i) => t.digest !== b.tables[i]?.digest)?.table ?? (a.platform.digest !== b.platform.digest ? "kappa_dead_letters, kappa_late_events or kappa_state" : undefined);
        throw new Error(
          `${def.name}: delivering every event twice gave a different view than delivering it once${table ? ` (table ${table} differs)` : ""} — ` +
            "keep all state in ctx.db, take time from the event and randomness from ctx.random()",
        );
      }
      await check(viewOf(def, once.writer.db), once.poison);
    } finally {
      once.close();
      twice.close();
    }
  }

  /** Then these tables hold exactly these rows (in key order); or, given a function, whatever it asserts on the view. */
  async then(expected: Record<string, Row[]> | ((view: TestView) => void | Promise<void>)): Promise<void> {
    await this.#build(async (view, poison) => {
      if (poison) throw new Error(`event ${poison.event.seq} (${poison.event.type}) of the spec failed: ${poison.message}`);
      if (typeof expected === "function") return expected(view);
      for (const [table, rows] of Object.entries(expected)) deepStrictEqual(view.rows(table), rows, `table ${table}`);
    });
  }

  /** Then the named query, with these parameters, answers exactly these rows. */
  async thenQuery(name: string, params: Record<string, unknown>, rows: Row[]): Promise<void> {
    await this.then((view) => deepStrictEqual(view.query(name, params), rows, `query ${name}`));
  }

  /** Then the processor halts on an event whose error matches. */
  async thenFails(match: RegExp | string): Promise<void> {
    await this.#build((_view, poison) => {
      if (!poison) throw new Error("expected the processor to fail on an event, but every event applied");
      const ok = typeof match === "string" ? poison.message.includes(match) : match.test(poison.message);
      if (!ok) throw new Error(`the processor failed, but with "${poison.message}", not ${String(match)}`);
    });
  }
}

/** The `given` step: the history before the events under test. */
export class GivenStep {
  constructor(private readonly def: () => Promise<ProcessorDefinition>, private readonly events: readonly TestEvent[]) {}
  /** When these events arrive. */
  when(events: readonly TestEvent[]): WhenStep {
    return new WhenStep(this.def, this.events, events);
  }
}

/** A processor under test. */
export interface ProcessorSpec {
  /** Given these earlier events (none by default). */
  given(events?: readonly TestEvent[]): GivenStep;
  /** The processor as the runner sees it (bundled and loaded when given a path). */
  definition(): Promise<ProcessorDefinition>;
}

/**
 * A given/when/then spec for a processor: a definition, or the path of a module (`.ts`, `.js`, `.sql`),
 * which is bundled and loaded exactly as `kappa deploy` and the worker do. No NATS, no server.
 */
export function processorSpec(processor: ProcessorDefinition | string): ProcessorSpec {
  let loaded: Promise<ProcessorDefinition> | undefined;
  const definition = () =>
    (loaded ??=
      typeof processor === "string"
        ? bundleProcessor(processor).then((b) => loadProcessor({ ...b, hash: hashCode(b.text) }, undefined, processor))
        : Promise.resolve(validateDefinition(processor, "the spec's processor")));
  return { given: (events = []) => new GivenStep(definition, events), definition };
}
