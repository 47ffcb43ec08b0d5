import type { Database } from "better-sqlite3";
import type { Random } from "./random.js";

/** An event as a processor sees it. `time` is when the log stored it; `id` its idempotency key. */
export interface KappaEvent<T = any> {
  seq: number;
  type: string;
  time: string;
  id: string;
  data: T;
}

/** What a processor gets with every event. */
export interface ProcessorContext {
  /** better-sqlite3 handle, already inside the batch transaction; `prepare` is cached. */
  db: Database;
  /** The processor's name and the version being built. */
  processor: string;
  version: number;
  /** Deterministic randomness: seeded from the processor and the event, identical on every replay. */
  random: Random;
  /** Emits a derived event to this version's output stream (written to the outbox in this transaction). */
  emit(type: string, data: unknown): void;
}

/** A handler for one event. Must be synchronous: it runs inside a SQLite transaction. */
export type Handler = (event: KappaEvent, ctx: ProcessorContext) => void;

/** Turns one event's data from schema version k of its type into version k+1. Pure: no clock, no randomness, no I/O. */
export type Upcaster = (data: any, event: KappaEvent) => any;

/** What to do when a handler throws or an event is unreadable. */
export type ErrorPolicy = "halt" | "skip";

/** The definition a processor module exports by default. */
export interface ProcessorDefinition {
  /** [a-z0-9_]+ */
  name: string;
  /** Event-type filters with NATS wildcards (`order.*`, `order.>`); all events when omitted. */
  subjects?: string[];
  /** Another processor whose output this one reads (a pipeline stage) instead of the main log. */
  source?: string;
  /** SQL migrations for the processor's tables, applied once each, in order. */
  schema: string[];
  apply?: Handler;
  on?: Record<string, Handler>;
  /**
   * Per event type, `[v1ToV2, v2ToV3, …]`: old events run through the chain up to the newest version
   * (the chain's length + 1) before a handler sees them, so handlers know one shape only.
   */
  upcasters?: Record<string, Upcaster[]>;
  /** Named read-only queries: `kappa query <processor> <name> --param k=v`. */
  queries?: Record<string, string>;
  onError?: ErrorPolicy;
}

/** Identity helper that gives a processor module its types; a plain object works just as well. */
export function defineProcessor<const T extends ProcessorDefinition>(def: T): T {
  return def;
}
