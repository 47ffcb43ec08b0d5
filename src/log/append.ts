import { randomUUID } from "node:crypto";
import type { NatsConnection } from "@nats-io/nats-core";
import { InputError } from "../errors.js";
import { PipelinedPublisher } from "./publisher.js";
import { validateEventType } from "./subjects.js";
import type { StreamSpec } from "./stream.js";
import { SCHEMA_HEADER } from "./rawEvent.js";

/** An event ready to publish: its type, its JSON text and its idempotency key. */
export interface OutgoingEvent {
  type: string;
  json: string;
  id: string;
  /** The schema version of its type (sent as a header when not 1). */
  schemaVersion?: number;
}

/** How to turn input lines into events. */
export interface LineOptions {
  /** The type of every line; without it each line is an envelope `{type, data, id?}`. */
  type?: string;
  /** Take the idempotency key from this field of the data (dots for nested fields). */
  idField?: string;
  /** Largest encoded event in bytes (the server's max_payload). */
  maxBytes: number;
  /** Lines without an id of their own get `<idBase>:<line number>` (a digest of the file), so a re-run repeats them; else a random id. */
  idBase?: string;
  /** Schema version of lines that do not give their own (`--schema-version`). */
  schemaVersion?: number;
  /** The id of a single event given on the command line (`--id`); it wins over `idField`. */
  id?: string;
}

/** Types already validated, each kept once: events share the one string instead of a copy per line. */
const knownTypes = new Map<string, string>();

/** Parses and checks one input line; throws an InputError naming the line. */
export function parseEventLine(line: string, lineNo: number, opts: LineOptions): OutgoingEvent {
  const where = `line ${lineNo}`;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new InputError(`${where}: invalid JSON (${(err as Error).message})`, { hint: "each line must be one JSON object; fix the line and run again — nothing was published", code: "BAD_EVENT" });
  }
  return checkEvent(value, where, opts, opts.idBase ? `${opts.idBase}:${lineNo}` : undefined);
}

/**
 * Checks one parsed event — an envelope `{type, data, id?}`, or a data object when `opts.type` is set —
 * and throws an InputError that starts with `where` ("line 3", "item 2"). Without an id of its own the
 * event gets `defaultId`, else a random one.
 */
export function checkEvent(value: unknown, where: string, opts: LineOptions & { defaultId?: string }, defaultId = opts.defaultId): OutgoingEvent {
  if (!isObject(value)) throw new InputError(`${where}: not a JSON object`, { hint: "each event must be one JSON object; nothing was published", code: "BAD_EVENT" });
  let type = opts.type;
  let data: unknown = value;
  let id: string | undefined;
  if (opts.id !== undefined) checkId((id = opts.id), where, "--id");
  let schemaVersion = opts.schemaVersion;
  if (type === undefined) {
    if (typeof value.type !== "string" || !("data" in value)) {
      throw new InputError(`${where}: expected an envelope {"type": ..., "data": {...}}`, { hint: "give the event type (`kappa append order.placed --file x.ndjson`, `POST /events/order.placed`) or write envelopes; nothing was published", code: "BAD_EVENT" });
    }
    type = value.type;
    data = value.data;
    if (value.id !== undefined && value.id !== null) checkId((id = idText(value.id, where, "the id")), where, "the id");
    if (value.schemaVersion !== undefined) schemaVersion = checkSchemaVersion(value.schemaVersion, `${where}: schemaVersion`);
  }
  try {
    const known = knownTypes.get(type);
    if (known !== undefined) type = known;
    else {
      validateEventType(type);
      if (knownTypes.size < 10_000) knownTypes.set(type, type);
    }
  } catch (err) {
    throw new InputError(`${where}: ${(err as InputError).message}`, { hint: (err as InputError).hint, code: "BAD_EVENT_TYPE" });
  }
  if (!isObject(data)) throw new InputError(`${where}: the event's data is not a JSON object`, { hint: "wrap values in an object, e.g. {\"value\": 3}; nothing was published", code: "BAD_EVENT" });
  if (opts.idField && id === undefined) {
    const v = pick(data, opts.idField);
    if (v === undefined || v === null || v === "") throw new InputError(`${where}: field ${opts.idField} (for --id-field) is missing`, { hint: "every event needs that field, or drop --id-field", code: "BAD_EVENT" });
    const what = `field ${opts.idField} (for --id-field)`;
    checkId((id = idText(v, where, what)), where, what);
  }
  const json = JSON.stringify(data);
  const ev: OutgoingEvent = { type, json, id: id ?? defaultId ?? randomUUID() };
  // NATS counts the headers against max_payload too (Nats-Msg-Id and Kappa's own): an event that fits only
  // without them would be refused by the client at publish time, and over HTTP answered 503 on every retry.
  // A UTF-16 unit takes at most 3 bytes in UTF-8: most events need no byte count.
  if ((json.length + ev.id.length) * 3 + HEADER_BYTES > opts.maxBytes) {
    const dataBytes = Buffer.byteLength(json);
    const headerBytes = Buffer.byteLength(ev.id) + HEADER_BYTES;
    if (dataBytes + headerBytes > opts.maxBytes) {
      throw new InputError(`${where}: event is ${dataBytes + headerBytes} bytes (${dataBytes} of data, up to ${headerBytes} of headers), above the server's limit of ${opts.maxBytes}`, {
        hint: "split the event or store large payloads elsewhere and reference them; nothing was published",
        code: "EVENT_TOO_LARGE",
      });
    }
  }
  if (schemaVersion !== undefined && schemaVersion !== 1) ev.schemaVersion = schemaVersion;
  return ev;
}

/**
 * What Kappa's own headers take beside the id, at most: NATS/1.0, Nats-Msg-Id's name, an atomic batch's
 * Nats-Batch-Id (a UUID), -Sequence and -Commit, Kappa-Schema-Version, or a lookup's expectation (169
 * bytes counted for the largest, an atomic batch's last event with a 16-digit schema version).
 */
export const HEADER_BYTES = 192;

/** An id given as a JSON value: strings and finite numbers only — objects, arrays and booleans would all collide (`[object Object]`). */
function idText(v: unknown, where: string, what: string): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  const kind = Array.isArray(v) ? "an array" : v === null ? "null" : typeof v === "object" ? "an object" : typeof v === "number" ? `${v}` : `a ${typeof v}`;
  throw new InputError(`${where}: ${what} is ${kind}, not a string or a number`, {
    hint: "ids must be strings or finite numbers (every object would become the same id); point at a field that holds one — nothing was published",
    code: "BAD_EVENT",
  });
}

/**
 * Refuses an idempotency key that cannot travel as a Nats-Msg-Id header as it is: empty, with a line break
 * (the client refuses it mid-publish), or with whitespace at either end (header values are trimmed, so
 * " a" and "a" would be the same id and one of the two events would be dropped as a duplicate).
 */
export function checkId(id: string, where: string, what: string): void {
  const at = where ? `${where}: ` : "";
  if (id === "") throw new InputError(`${at}${what} is empty`, { hint: "give a non-empty id, or none; nothing was published", code: "BAD_EVENT" });
  if (/[\r\n]/.test(id)) throw new InputError(`${at}${what} has a line break`, { hint: "give an id without \\r or \\n; nothing was published", code: "BAD_EVENT" });
  // The client trims with String.trim(), the server with Go's unicode.IsSpace (which adds U+0085); most ids
  // begin and end with printable ASCII, which needs no regex.
  if (!(printable(id.charCodeAt(0)) && printable(id.charCodeAt(id.length - 1))) && /^[\s\u0085]|[\s\u0085]$/.test(id)) {
    throw new InputError(`${at}${what} ${JSON.stringify(id)} starts or ends with whitespace`, {
      hint: `NATS trims header values, so it would be stored as ${JSON.stringify(id.replace(/^[\s\u0085]+|[\s\u0085]+$/g, ""))} and collide with that id; trim it — nothing was published`,
      code: "BAD_EVENT",
    });
  }
}

function printable(c: number): boolean {
  return c > 32 && c < 127;
}

/** A schema version must be a positive integer; anything else is refused with the place it came from. */
export function checkSchemaVersion(v: unknown, where: string): number {
  const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) {
    throw new InputError(`${where} ${JSON.stringify(v)} is not a schema version`, { hint: "schema versions are whole numbers from 1 (absent means 1); nothing was published", code: "BAD_SCHEMA_VERSION" });
  }
  return n;
}

/** Summary of an append: how many were stored, how many were duplicates, and the sequence range. */
export interface AppendSummary {
  count: number;
  stored: number;
  duplicates: number;
  firstSeq: number | null;
  lastSeq: number | null;
  /** Every sequence, in input order, when there were few enough to list (≤ 10,000). */
  seqs?: number[];
}

const CHUNK = 1000;

/**
 * Publishes events in order with a bounded window of acks in flight; rejects on the first failure.
 * Events are taken in chunks and each chunk is published without yielding: the client flushes its
 * buffer once per turn of the event loop, so a chunk goes out in one socket write, not one per event.
 */
export async function appendEvents(nc: NatsConnection, spec: StreamSpec, events: Iterable<OutgoingEvent> | AsyncIterable<OutgoingEvent>, opts: { window?: number; onAck?: (n: number) => void } = {}): Promise<AppendSummary> {
  const enc = new TextEncoder();
  const summary: AppendSummary = { count: 0, stored: 0, duplicates: 0, firstSeq: null, lastSeq: null, seqs: [] };
  let failure: Error | undefined;
  const pub = new PipelinedPublisher(nc, {
    window: opts.window,
    onResult: (i, err, seq, dup) => {
      if (err) {
        failure ??= err;
        return;
      }
      if (summary.seqs) {
        if (i < 10_000) summary.seqs[i] = seq;
        else summary.seqs = undefined;
      }
      if (dup) summary.duplicates++;
      else summary.stored++;
      if (summary.firstSeq === null || seq < summary.firstSeq) summary.firstSeq = seq;
      if (summary.lastSeq === null || seq > summary.lastSeq) summary.lastSeq = seq;
      opts.onAck?.(summary.stored + summary.duplicates);
    },
  });
  const chunk: OutgoingEvent[] = [];
  const flush = async () => {
    if (pub.inFlight >= pub.window) await pub.waitForSpace(); // in flight stays ≤ window + one chunk
    for (const ev of chunk) pub.send(`${spec.prefix}.${ev.type}`, enc.encode(ev.json), ev.id, summary.count++, ev.schemaVersion ? { [SCHEMA_HEADER]: String(ev.schemaVersion) } : undefined);
    chunk.length = 0;
  };
  try {
    for await (const ev of events) {
      chunk.push(ev);
      if (chunk.length >= CHUNK) {
        await flush();
        if (failure) break;
      }
    }
    if (chunk.length && !failure) await flush();
    await pub.drain();
  } finally {
    pub.close();
  }
  if (failure) throw failure;
  if (summary.count > 10_000) summary.seqs = undefined;
  return summary;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Reads a field by dotted path. */
export function pick(obj: Record<string, unknown>, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split(".")) {
    if (!isObject(cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}
