import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { BatchLimits } from "../log/index.js";
import type { VersionFailure, VersionRecord, DataDir, SchemaNote } from "../views/index.js";
import type { ThreadInit } from "./applyProtocol.js";
import type { StoredCode } from "./codeStore.js";
import type { OutboxGate } from "./outbox.js";
import type { LiveFirst } from "./liveFirst.js";
import type { BulkReader } from "./bulkReader.js";

/** Default for `--handler-timeout`. */
export const DEFAULT_HANDLER_TIMEOUT_MS = 10_000;

/** Where a version reads from: the main log, or an upstream version's output (pipelines). */
export interface InputSpec {
  stream: string;
  prefix: string;
}

/** What a runner needs from its surroundings. */
export interface RunnerDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  /** Reads while the version is catching up (a connection of its own, so live versions do not wait behind a backlog); `js` once caught up. */
  bulkJs?: JetStreamClient;
  /** The same on a thread of its own (its own connection, lower priority); preferred over bulkJs. */
  bulkReader?: BulkReader;
  jsm: JetStreamManager;
  dataDir: DataDir;
  input: InputSpec;
  /** The version's code, loaded again on its apply thread. */
  code: StoredCode;
  /** Where ctx.emit output goes (stream and subject prefix); emits stay in the outbox when absent. */
  output?: InputSpec;
  /** Publishes the outbox only while this worker is the version's fenced writer; absent: always. */
  gate?: OutboxGate;
  /** Seeds a missing view file from a snapshot; resolves to the snapshot's checkpoint, or null when there is none. */
  restore?: (viewFile: string) => Promise<number | null>;
  limits?: Partial<BatchLimits>;
  /** Shared by a worker's runners so live versions go first; absent: every version reads and applies at full speed. */
  liveFirst?: LiveFirst;
  /** How long a write waits for a SQLite lock before it counts as a transient failure (default 5000 ms). */
  busyTimeoutMs?: number;
  /** A handler that does not return within this fails its version (default 10 s). */
  handlerTimeoutMs?: number;
  /** For a pipeline stage: whether the upstream version has caught up and published every emit; the stage is caught up only then. */
  upstreamSettled?: () => boolean | Promise<boolean>;
  /** Called once, the first time the version has applied everything in the log. */
  onCaughtUp: () => void;
  /** Called when the version cannot go on (a poison event under "halt", a failed migration, a stuck handler). */
  onFailed: (f: VersionFailure) => void;
  /** Transient trouble (NATS, SQLite busy): reported, then retried. */
  onTrouble: (message: string) => void;
  /** The build met schema versions its code cannot upcast that it had not met before (each once). */
  onSchemaNotes?: (fresh: SchemaNote[]) => void;
}

/** What a version's apply thread starts with. */
export function threadInit(processor: string, record: VersionRecord, deps: RunnerDeps, path: string, log: string, background: boolean): Omit<ThreadInit, "progress"> {
  return {
    path,
    processor,
    version: record.version,
    codeHash: record.codeHash,
    // A file belongs to one log and one catalog entry: one left by another stream or a wiped store is rebuilt.
    log,
    entry: record.createdAt,
    ...(record.untilSeq !== undefined ? { untilSeq: record.untilSeq } : {}),
    ...(record.startSeq !== undefined ? { startSeq: record.startSeq } : {}),
    code: deps.code,
    codeDir: deps.dataDir.root + "/code",
    origin: record.origin,
    busyTimeoutMs: deps.busyTimeoutMs,
    timeHeader: record.source !== undefined,
    ...(background ? { background } : {}),
    ...(record.schemaCheck === false ? { schemaCheck: false as const } : {}),
  };
}
