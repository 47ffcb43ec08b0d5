import type { Database } from "better-sqlite3";
import type { KappaEvent } from "../define.js";
import { SynopsisStore, type StateContext } from "../synopses/store.js";
import type { Synopsis } from "../synopses/synopsis.js";
import { Aggregator, type Acc, type AggregationOptions, type ResultColumns } from "./aggregate.js";
import { WindowConfigError } from "./errors.js";
import { ResultsTable, type BoundType, type ResultShape } from "./results.js";
import { WindowState } from "./state.js";

/** Options every window takes. */
export interface WindowOptions<T = any, V = unknown, A = unknown> extends AggregationOptions<T, V, A> {
  /** Unique within the processor: names the window's state and its late events. [A-Za-z0-9_]+ */
  name: string;
  /** The results table; default: the window's name. */
  table?: string;
  /** Groups events: one result per key and window. Default: one group, key "*". */
  key?: (event: KappaEvent<T>) => string | number;
  /** Keep only the newest N final result rows per key (older ones are deleted as windows close). */
  retain?: number;
}

/** What `add` did with an event. */
export interface AddResult {
  /** Windows the event was added to. */
  windows: number;
  /** Windows the event missed because they had closed (each recorded in kappa_late_events). */
  late: number;
}

/** A window definition: call `add` from the processor's `apply` with every event it should see. */
export interface Window<T = any> {
  readonly name: string;
  /** The results table's name. */
  readonly table: string;
  /** CREATE TABLE IF NOT EXISTS for the results table, to list in the processor's `schema` if you like. */
  readonly schema: string;
  /** Adds an event, inside the caller's transaction. */
  add(event: KappaEvent<T>, ctx: StateContext): AddResult;
}

const NAME = /^[A-Za-z0-9_]+$/;
/** The key of every event when a window has no `key` function. */
export const DEFAULT_KEY = "*";

/** The parts every window kind shares: options checked, state, results table, aggregator, synopses. */
export class WindowCore<T, V, A> {
  readonly name: string;
  readonly state: WindowState;
  readonly results: ResultsTable;
  readonly agg: Aggregator<T, V, A>;
  readonly synopses: SynopsisStore<Synopsis> | undefined;
  readonly retain: number | undefined;
  readonly #key: ((e: KappaEvent<T>) => string | number) | undefined;

  constructor(opts: WindowOptions<T, V, A>, shape: ResultShape, bounds: BoundType) {
    if (typeof opts.name !== "string" || !NAME.test(opts.name)) {
      throw new WindowConfigError(String(opts.name), "needs a name of letters, digits and _", 'e.g. name: "requests_per_minute"');
    }
    this.name = opts.name;
    this.state = new WindowState(opts.name);
    this.results = new ResultsTable(opts.name, opts.table ?? opts.name, shape, bounds);
    this.agg = new Aggregator(opts.name, opts);
    this.#key = opts.key;
    if (opts.retain !== undefined && (!Number.isInteger(opts.retain) || opts.retain < 1)) {
      throw new WindowConfigError(opts.name, `retain ${opts.retain} is not a positive integer`, "retain: 60 keeps the newest 60 final windows per key");
    }
    this.retain = opts.retain;
    const syn = this.agg.synopsis;
    this.synopses = syn && new SynopsisStore({ name: opts.name, stateName: `window:${opts.name}:synopsis`, create: syn.create, deserialize: syn.deserialize });
  }

  /** The group of an event. */
  /** What every window exposes about itself: its name, results table and schema. */
  get descriptor(): { name: string; table: string; schema: string } {
    return { name: this.name, table: this.results.name, schema: this.results.schema };
  }

  /** The start of every add(): make sure the results table exists, then read the event's key and value. */
  begin(event: KappaEvent<T>, db: Database): { key: string; value: V } {
    this.results.ensure(db);
    return { key: this.keyOf(event), value: this.agg.valueOf(event) };
  }

  keyOf(event: KappaEvent<T>): string {
    return this.#key ? String(this.#key(event)) : DEFAULT_KEY;
  }

  /** Folds a value into an accumulator and the window's synopsis, and returns the result row's columns. */
  addTo(ctx: StateContext, stateKey: string, acc: Acc, value: V): ResultColumns {
    this.agg.add(acc, value);
    const syn = this.agg.synopsis;
    if (!syn || !this.synopses) return this.agg.columns(acc);
    const result = this.synopses.update(ctx, stateKey, (s) => {
      syn.add(s, value);
      return syn.result(s);
    });
    return this.agg.columns(acc, result);
  }

  /** Result columns of an accumulator as it stands (reading the synopsis, if any). */
  columnsOf(ctx: StateContext, stateKey: string, acc: Acc): ResultColumns {
    const syn = this.agg.synopsis;
    if (!syn || !this.synopses) return this.agg.columns(acc);
    const s = this.synopses.get(ctx, stateKey) ?? syn.create("");
    return this.agg.columns(acc, syn.result(s));
  }

  /** Forgets a closed window's synopsis. */
  dropSynopsis(ctx: StateContext, stateKey: string): void {
    this.synopses?.delete(ctx, stateKey);
  }

  /** Moves a synopsis to a new state key, merging it into what is there (session windows). */
  mergeSynopsis(ctx: StateContext, fromKey: string, intoKey: string): void {
    const syn = this.agg.synopsis;
    if (!syn || !this.synopses || fromKey === intoKey) return;
    const from = this.synopses.get(ctx, fromKey);
    if (from) {
      const into = this.synopses.get(ctx, intoKey);
      if (into) this.synopses.update(ctx, intoKey, (s) => syn.merge!(s, from));
      else this.synopses.put(ctx, intoKey, syn.deserialize(from.serialize()));
    }
    this.synopses.delete(ctx, fromKey);
  }

  /** Applies `retain` to a key after one of its windows closed. */
  afterClose(ctx: StateContext, key: string): void {
    if (this.retain !== undefined) this.results.retain(ctx.db, key, this.retain);
  }
}
