import { InputError, messageOf } from "../../errors.js";
import { checkEvent, type OutgoingEvent } from "../../log/index.js";

/** One refused item of a request body. */
export interface ItemError {
  /** The item's place in the request, from 0 (for NDJSON: among the non-blank lines). */
  index: number;
  /** Its line in an NDJSON body, from 1. */
  line?: number;
  error: string;
  message: string;
}

/** How to read a request's events. */
export interface EventBodyOptions {
  /** `POST /events/:type`: every item is a data object of this type. */
  type?: string;
  /** Take each event's id from this data field. */
  idField?: string;
  /** From an `Idempotency-Key` header: events without an id get `<key>:<index>`. */
  idempotencyKey?: string;
  /** Largest encoded event (the NATS server's max_payload). */
  maxBytes: number;
  /** Most events in one request. */
  maxEvents: number;
}

/** The checked events of a request, or every reason it was refused (at most 20 are listed). */
export type CheckedBody = { ok: true; events: OutgoingEvent[] } | { ok: false; errors: ItemError[]; total: number };

const MAX_LISTED = 20;

/** Splits an NDJSON body into its non-blank lines, each parsed (a line that is not JSON becomes an error). */
function ndjsonItems(text: string): { value?: unknown; line: number; bad?: string }[] {
  const out: { value?: unknown; line: number; bad?: string }[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!.trim();
    if (!l) continue;
    try {
      out.push({ value: JSON.parse(l), line: i + 1 });
    } catch (err) {
      out.push({ line: i + 1, bad: `invalid JSON (${messageOf(err)})` });
    }
  }
  return out;
}

/**
 * Checks a whole request body before anything is published: a JSON array (or one object) or NDJSON text
 * of envelopes `{type, data, id?}` — or of data objects when the route names the type.
 */
export function checkEventBody(body: unknown, opts: EventBodyOptions): CheckedBody {
  const items = typeof body === "string" ? ndjsonItems(body) : (Array.isArray(body) ? body : body === undefined || body === null ? [] : [body]).map((value) => ({ value }) as { value?: unknown; line?: number; bad?: string });
  if (items.length === 0) {
    throw new InputError("the request holds no events", { hint: opts.type ? 'send a JSON array of data objects, e.g. [{"user": "u1"}], or NDJSON' : 'send a JSON array of {"type", "data", "id"?} envelopes, or NDJSON', code: "NO_EVENTS" });
  }
  if (items.length > opts.maxEvents) {
    throw new InputError(`the request holds ${items.length} events; this server takes at most ${opts.maxEvents} per request`, { hint: `split it into requests of at most ${opts.maxEvents} events (each is stored all-or-nothing)`, code: "TOO_MANY_EVENTS" });
  }
  const events: OutgoingEvent[] = [];
  const errors: ItemError[] = [];
  let total = 0;
  items.forEach((item, index) => {
    const where = `item ${index}${item.line !== undefined ? ` (line ${item.line})` : ""}`;
    try {
      if (item.bad !== undefined) throw new InputError(`${where}: ${item.bad}`, { code: "BAD_EVENT" });
      const ev = checkEvent(item.value, where, {
        maxBytes: opts.maxBytes,
        ...(opts.type !== undefined ? { type: opts.type } : {}),
        ...(opts.idField ? { idField: opts.idField } : {}),
        ...(opts.idempotencyKey !== undefined ? { defaultId: `${opts.idempotencyKey}:${index}` } : {}),
      });
      events.push(ev);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      total++;
      if (errors.length < MAX_LISTED) errors.push({ index, ...(item.line !== undefined ? { line: item.line } : {}), error: err.code, message: err.message });
    }
  });
  return total > 0 ? { ok: false, errors, total } : { ok: true, events };
}
