// The boundary between a worker's main thread and its bulk reader thread (readerThread.ts): what goes in at
// start, and the messages each way. Nothing else crosses.
import type { NatsOptions } from "../log/connect.js";
import type { ReadSpec } from "../log/reader.js";
import type { PackedBatch } from "../log/packed.js";

/** What the reader thread gets at start (workerData). */
export interface ReaderInit {
  /** How to open its own connection. */
  nats: NatsOptions;
  /** Run at lower priority than the worker (its reads are rebuilds': live versions first). */
  lower: boolean;
}

/** An error as it crosses the thread boundary. */
export interface WireError {
  message: string;
  code?: string;
  hint?: string;
}

/** Main → reader. `id` names one subscription. */
export type ToReader =
  /** Opens an ordered consumer; batches are packed with a type table that starts as `types` (the version's). */
  | { kind: "open"; id: number; spec: ReadSpec; types: string[]; prefixLength: number; paused: boolean }
  | { kind: "pause"; id: number }
  | { kind: "resume"; id: number }
  | { kind: "window"; id: number; n: number }
  | { kind: "max-events"; id: number; n: number }
  /** Stops it; a batch being collected is handed over first, then "closed". */
  | { kind: "stop"; id: number }
  /** Stops everything and closes the connection, then "bye". */
  | { kind: "close" };

/** Reader → main. */
export type FromReader =
  | { kind: "opened"; id: number }
  | { kind: "open-failed"; id: number; error: WireError }
  | { kind: "batch"; id: number; batch: PackedBatch }
  /** The subscription ended: stopped (no error) or failed. */
  | { kind: "closed"; id: number; error?: WireError }
  | { kind: "bye" };
