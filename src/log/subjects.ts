import { InputError } from "../errors.js";

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** Checks an event type such as `order.placed`: dot-separated tokens of letters, digits, `_` and `-`. */
export function validateEventType(type: string): string {
  const tokens = type.split(".");
  if (type.length === 0 || type.length > 200 || !tokens.every((t) => TOKEN.test(t))) {
    throw new InputError(`"${type}" is not a valid event type`, {
      hint: "use dot-separated words of letters, digits, _ and - (for example order.placed)",
      code: "BAD_EVENT_TYPE",
    });
  }
  return type;
}

/** Checks a subject filter over event types (`orders.>`, `order.*`, `order.placed`). */
export function validateTypeFilter(filter: string): string {
  const tokens = filter.split(".");
  const ok = tokens.every((t, i) => TOKEN.test(t) || t === "*" || (t === ">" && i === tokens.length - 1));
  if (!ok || filter.length === 0) {
    throw new InputError(`"${filter}" is not a valid subject filter`, {
      hint: "use event types with NATS wildcards, for example `order.*` or `order.>`",
    });
  }
  return filter;
}

/** True when an event type matches a NATS-style filter (`*` one token, `>` the rest). */
export function typeMatches(filter: string, type: string): boolean {
  const f = filter.split(".");
  const t = type.split(".");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === ">") return t.length > i;
    if (i >= t.length) return false;
    if (f[i] !== "*" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Builds a matcher for a list of filters (none = everything). */
export function typeMatcher(filters: readonly string[] | undefined): (type: string) => boolean {
  if (!filters || filters.length === 0) return () => true;
  return (type) => filters.some((f) => typeMatches(f, type));
}
