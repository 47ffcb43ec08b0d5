// The whole boundary between a version's runner (the NATS thread) and its apply thread: what goes in at
// start, the messages each way, and the shared progress words. Nothing else crosses.
import type { PackedBatch } from "../log/index.js";
import type { StoredCode } from "./codeStore.js";
import type { SchemaNote } from "../views/catalogTypes.js";

/** What an apply thread gets at start (workerData). */
export interface ThreadInit {
  /** The view file and the identity it must carry. */
  path: string;
  processor: string;
  version: number;
  codeHash: string;
  /** The log and catalog entry that build the file (a file from another one is rebuilt). */
  log: string;
  entry: string;
  /** A frozen version applies nothing after this sequence. */
  untilSeq?: number;
  /** The version's first sequence (the gap check expects nothing before it). */
  startSeq?: number;
  /** The processor's code (loaded again on the thread: functions do not cross threads). */
  code: StoredCode;
  codeDir: string;
  origin?: string;
  busyTimeoutMs?: number;
  /** Events carry their own time in a Kappa-Time header (a pipeline stage's input). */
  timeHeader: boolean;
  /** Shared progress words, see PROGRESS_*. */
  progress: SharedArrayBuffer;
  /** The thread runs at lower priority until told otherwise (a version catching up; live versions first, see liveFirst.ts). */
  background?: boolean;
  /** `--no-schema-check`: schema versions the code cannot upcast are not noted. */
  schemaCheck?: false;
}

/** Runner → thread. */
export type ToThread =
  /** `gen` counts the runner's subscriptions: after a failed batch the thread drops the rest of that generation. */
  | { kind: "batch"; batch: PackedBatch; gen: number }
  /** Moves the checkpoint to `seq` with no rows when it still stands at `from` (nothing matching lies between). */
  | { kind: "advance"; seq: number; from: number }
  /** Back to normal priority: the version caught up. */
  | { kind: "foreground" }
  | { kind: "close" };

/** What a batch (or an advance) did. */
export interface AppliedReport {
  kind: "applied";
  checkpoint: number;
  /** Totals since the thread started. */
  applied: number;
  skipped: number;
  /** How long the batch took on the thread, ms (0 for an advance). */
  ms: number;
  events: number;
  /** The log's pending count the batch carried (−1 for an advance). */
  pending: number;
  /** The batch's generation (−1 for an advance). */
  gen: number;
  /** ctx.emit calls in this batch: the outbox has work only then. */
  emitted: number;
  /** Set when the batch stopped at a poison event under "halt": everything before it is committed. */
  poison?: { seq: number; type: string; message: string };
  /** The first sequence the batch skips over (the log lost events this version has not applied): nothing was applied. */
  gap?: number;
  /** A frozen version has applied everything up to its last sequence. */
  reached?: boolean;
  /** Every schema version the code cannot upcast met so far, when this batch changed them. */
  schema?: SchemaNote[];
}

/** Thread → runner. */
export type FromThread =
  /** `replaced`: the file belonged to another log or entry and was started afresh (said why). */
  | { kind: "ready"; checkpoint: number; replaced?: string; schema?: SchemaNote[] }
  | AppliedReport
  /** The thread cannot go on; `transient` means a retry may succeed (SQLite busy, disk), else the version fails. */
  | { kind: "error"; message: string; transient: boolean; code?: string; checkpoint?: number }
  | { kind: "closed" };

/** Int32 slot: bumped before every handler call and after every batch, so a watchdog sees progress. */
export const PROGRESS_TICKS = 0;
/** Int32 slot: the type-table index of the event being applied. */
export const PROGRESS_TYPE = 1;
/** Float64 slot (byte offset 8): the sequence of the event being applied. */
export const PROGRESS_SEQ_OFFSET = 8;
/** Bytes of the progress buffer. */
export const PROGRESS_BYTES = 16;
