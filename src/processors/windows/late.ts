import type { Database } from "better-sqlite3";
import type { KappaEvent } from "../define.js";
import { stableStringify } from "../synopses/stableJson.js";
import { statement } from "../synopses/statements.js";
import { iso } from "./eventTime.js";

const INSERT =
  "INSERT OR IGNORE INTO kappa_late_events (seq, window_name, key, window_start, window_end, event_time, data) VALUES (?, ?, ?, ?, ?, ?, ?)";

/**
 * Records an event that arrived after the window it belongs to had closed, with the window it
 * missed: late data is kept for inspection and reprocessing, never dropped in silence.
 * Bounds are ISO text for time windows.
 */
export function recordLate(db: Database, window: string, key: string, start: number, end: number, eventTime: number, event: KappaEvent): void {
  statement(db, INSERT).run(event.seq, window, key, iso(start), iso(end), iso(eventTime), stableStringify(event.data));
}
