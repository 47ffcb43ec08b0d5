import { InputError } from "../errors.js";

/** Where to start reading: a stream sequence, an instant, the first event or after the last. */
export type Offset =
  | { kind: "start" }
  | { kind: "end" }
  | { kind: "seq"; seq: number }
  | { kind: "time"; time: string };

/** Parses `start`, `end`, a positive sequence number or an ISO time. */
export function parseOffset(text: string): Offset {
  const t = text.trim();
  if (t === "start" || t === "beginning" || t === "first") return { kind: "start" };
  if (t === "end" || t === "now" || t === "new") return { kind: "end" };
  if (/^\d+$/.test(t)) {
    const seq = Number(t);
    if (!Number.isSafeInteger(seq) || seq < 1) {
      throw new InputError(`offset ${t} is not a valid sequence`, { hint: "sequences start at 1; use `start` for the beginning" });
    }
    return { kind: "seq", seq };
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(t)) {
    const ms = Date.parse(t);
    if (Number.isNaN(ms)) throw new InputError(`offset ${t} is not a valid time`, { hint: "use an ISO time such as 2026-01-31T12:00:00Z" });
    return { kind: "time", time: new Date(ms).toISOString() };
  }
  throw new InputError(`offset "${t}" is not understood`, {
    hint: "an offset is a sequence number, an ISO time, `start` or `end`",
  });
}

/** A stable text form of an offset, for the catalog and for display. */
export function formatOffset(o: Offset): string {
  switch (o.kind) {
    case "start":
    case "end":
      return o.kind;
    case "seq":
      return String(o.seq);
    case "time":
      return o.time;
  }
}
