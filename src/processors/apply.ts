import type { Statement } from "better-sqlite3";
import { messageOf } from "../errors.js";
import { typeMatcher, typeMatches, validateEventType } from "../log/subjects.js";
import type { RawEvent } from "../log/rawEvent.js";
import type { ViewWriter } from "../views/viewFile.js";
import type { Handler, KappaEvent, ProcessorContext, ProcessorDefinition } from "./define.js";
import { seededRandom, type Random } from "./random.js";
import { compileUpcasters, type Upcast } from "./upcast.js";
import { SchemaWatch } from "./schemaWatch.js";

/** An event the processor could not apply: unreadable, or its handler threw. `message` does not repeat the event: whoever shows it names the event once. */
export interface Poison {
  event: RawEvent;
  message: string;
  cause: unknown;
}

/** SQLite errors that mean "try again later", never "this event is bad". */
export function isTransientSqliteError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "string" && /^SQLITE_(BUSY|LOCKED|IOERR|FULL|NOMEM|PROTOCOL|CANTOPEN)/.test(code);
}

/** The event a handler sees; `id` is read from the message headers only if the handler asks. */
class AppliedEvent implements KappaEvent {
  readonly seq: number;
  readonly type: string;
  readonly time: string;
  constructor(private readonly raw: RawEvent, public data: unknown) {
    this.seq = raw.seq;
    this.type = raw.type;
    this.time = raw.time;
  }
  get id(): string {
    return this.raw.id;
  }
  toJSON(): object {
    return { seq: this.seq, type: this.type, time: this.time, id: this.id, data: this.data };
  }
}

class PoisonSignal extends Error {
  constructor(readonly index: number, readonly poison: Poison) {
    super(poison.message);
  }
}

const decoder = new TextDecoder();
/** NATS's default max_payload is 1 MiB; an emit must fit in one message with its headers. */
const MAX_EMIT_BYTES = 1_000_000;

/**
 * Applies batches of raw events to one view version: skips what the checkpoint already covers,
 * runs the processor's handlers inside the batch transaction, and moves the checkpoint with the rows.
 */
export class BatchApplier {
  readonly #writer: ViewWriter;
  readonly #def: ProcessorDefinition;
  readonly #matches: (type: string) => boolean;
  readonly #handlers = new Map<string, Handler | null>();
  readonly #wanted = new Map<string, boolean>();
  readonly #ctx: ProcessorContext;
  readonly #outbox: Statement;
  readonly #deadLetter: Statement;
  readonly #upcast: Upcast | null;
  #current: KappaEvent | undefined;
  #emitted = 0;
  #rng: Random | undefined;
  #rngSeq = -1;
  /** Events applied through this applier. */
  applied = 0;
  /** Poison events recorded under onError: "skip". */
  skipped = 0;
  /** ctx.emit calls so far (counting attempts rolled back with a poison batch: a hint that the outbox has work). */
  emits = 0;

  readonly #beforeEvent: ((raw: RawEvent) => void) | undefined;
  /** Notes schema versions the code cannot upcast (absent with `--no-schema-check`). */
  readonly schemaWatch: SchemaWatch | undefined;

  /**
   * `beforeEvent` runs before each handler call (an apply thread marks which event it is on, for its
   * watchdog); `schemaCheck: false` turns off noting schema versions the code cannot upcast.
   */
  constructor(writer: ViewWriter, def: ProcessorDefinition, version: number, opts: { beforeEvent?: (raw: RawEvent) => void; schemaCheck?: boolean } = {}) {
    this.#writer = writer;
    this.#beforeEvent = opts.beforeEvent;
    this.schemaWatch = opts.schemaCheck === false ? undefined : new SchemaWatch(def, writer.db);
    this.#def = def;
    this.#matches = typeMatcher(def.subjects);
    this.#upcast = compileUpcasters(def);
    this.#outbox = writer.db.prepare("INSERT INTO kappa_outbox (seq, idx, type, time, data) VALUES (?, ?, ?, ?, ?)");
    this.#deadLetter = writer.db.prepare("INSERT OR REPLACE INTO kappa_dead_letters (seq, type, time, id, data, error) VALUES (?, ?, ?, ?, ?, ?)");
    this.#ctx = {
      db: writer.db,
      processor: def.name,
      version,
      random: () => this.#random(),
      emit: (type, data) => this.#emit(type, data),
    };
  }

  /**
   * Applies a batch. Returns the first poison event when the policy is "halt" (everything before it is
   * committed); with "skip", poison events go to the dead-letter table and the batch goes on.
   * Transient SQLite errors are thrown: nothing of the failed transaction is kept.
   */
  apply(events: RawEvent[]): Poison | null {
    let start = 0;
    while (start < events.length) {
      const cp = this.#writer.checkpoint;
      while (start < events.length && events[start]!.seq <= cp) start++; // redelivered
      if (start >= events.length) return null;
      try {
        this.#commitRange(events, start, events.length);
        return null;
      } catch (err) {
        if (!(err instanceof PoisonSignal)) throw err;
        const k = err.index;
        if (k > start) this.#commitRange(events, start, k); // deterministic: these applied cleanly a moment ago
        if (this.#def.onError !== "skip") return err.poison;
        const ev = events[k]!;
        this.#writer.commit(ev.seq, () => {
          this.#deadLetter.run(ev.seq, ev.type, ev.time, ev.id, Buffer.from(ev.data), err.poison.message);
        });
        this.skipped++;
        start = k + 1;
      }
    }
    return null;
  }

  #commitRange(events: RawEvent[], from: number, to: number): void {
    let n = 0;
    const watch = this.schemaWatch;
    this.#writer.commit(events[to - 1]!.seq, () => {
      n = 0;
      watch?.begin();
      for (let i = from; i < to; i++) {
        const raw = events[i]!;
        if (!this.#wants(raw.type)) continue;
        const handler = this.#handlerFor(raw.type);
        if (!handler) continue;
        watch?.observe(raw);
        let data: unknown;
        try {
          data = JSON.parse(decoder.decode(raw.data));
        } catch (e) {
          throw new PoisonSignal(i, { event: raw, message: `not valid JSON — another client may have published it: ${messageOf(e)}${watch?.explain(raw) ?? ""}`, cause: e });
        }
        const ev = new AppliedEvent(raw, data);
        this.#current = ev;
        this.#emitted = 0;
        this.#rng = undefined; // an event applied again after a rollback draws the same numbers
        this.#beforeEvent?.(raw);
        try {
          if (this.#upcast) ev.data = this.#upcast(raw, data, ev);
          handler(ev, this.#ctx);
        } catch (e) {
          if (isTransientSqliteError(e)) throw e;
          throw new PoisonSignal(i, { event: raw, message: `${this.#def.name} threw: ${messageOf(e)}${watch?.explain(raw) ?? ""}`, cause: e });
        }
        n++;
      }
      watch?.write();
      return n;
    });
    watch?.committed();
    this.applied += n;
    this.#current = undefined;
  }

  /** Whether the processor's subjects take this type (cached: the same few types repeat). */
  #wants(type: string): boolean {
    let w = this.#wanted.get(type);
    if (w === undefined) {
      w = this.#matches(type);
      if (this.#wanted.size < 10_000) this.#wanted.set(type, w);
    }
    return w;
  }

  #handlerFor(type: string): Handler | null {
    let h = this.#handlers.get(type);
    if (h === undefined) {
      if (this.#def.apply) h = this.#def.apply;
      else {
        const on = this.#def.on ?? {};
        h = on[type] ?? Object.entries(on).find(([pattern]) => typeMatches(pattern, type))?.[1] ?? null;
      }
      this.#handlers.set(type, h);
    }
    return h;
  }

  #random(): number {
    const ev = this.#current;
    if (!ev) throw new Error("ctx.random() is only available while applying an event");
    if (!this.#rng || this.#rngSeq !== ev.seq) {
      this.#rng = seededRandom(`${this.#def.name}/${ev.seq}`);
      this.#rngSeq = ev.seq;
    }
    return this.#rng();
  }

  #emit(type: string, data: unknown): void {
    const ev = this.#current;
    if (!ev) throw new Error("ctx.emit() is only available while applying an event");
    validateEventType(type);
    const json = JSON.stringify(data ?? null);
    if (json.length > MAX_EMIT_BYTES) throw new Error(`ctx.emit("${type}") of ${json.length} bytes is above the ${MAX_EMIT_BYTES}-byte limit of an event`);
    this.#outbox.run(ev.seq, this.#emitted++, type, ev.time, json);
    this.emits++;
  }
}
