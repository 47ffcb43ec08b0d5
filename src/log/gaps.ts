// Pure, no NATS: the apply thread imports it on its own.

/**
 * The first sequence at or after `expected` that a run of events skips (a truncated log), or null when none is missing.
 * `skipped` (ascending) are sequences the reader consumed without handing them over (writer fences): no gap.
 */
export function firstGap(events: readonly { seq: number }[], expected: number, skipped: readonly number[] = []): number | null {
  let next = expected;
  let k = 0;
  for (const e of events) {
    for (; k < skipped.length && skipped[k]! < e.seq; k++) if (skipped[k] === next) next++;
    if (e.seq < next) continue; // redelivered: at or below what was applied
    if (e.seq > next) return next;
    next++;
  }
  return null;
}
