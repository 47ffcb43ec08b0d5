/** Lifecycle of a view version. */
export type VersionState = "building" | "caught-up" | "live" | "retired" | "failed";

/** Why a version failed: the event and the error. */
export interface VersionFailure {
  message: string;
  seq?: number;
  type?: string;
  at: string;
}

/**
 * A schema version of a type the processor handles that its code has no upcaster for (or an unreadable
 * version header, `version` 0), as the build met it: its handlers get that shape unchanged.
 */
export interface SchemaNote {
  type: string;
  version: number;
  /** Events of that type and version applied so far. */
  count: number;
  firstSeq: number;
  lastSeq: number;
  /** The newest version the code declares for the type (its handlers' shape). */
  newest: number;
}

/** One deployment of a processor, as the catalog records it. */
export interface VersionRecord {
  version: number;
  codeHash: string;
  codeKind: "js" | "sql";
  /** The file the code was deployed from (for messages). */
  origin?: string;
  /** The offset as given (`start`, `end`, a sequence or a time). */
  from: string;
  /** The first sequence to read, resolved at deploy time (for `end` and times too). */
  startSeq?: number;
  /** The time offset as given, when it was one. */
  startTime?: string;
  /** A frozen version (`--until`): the offset as given. */
  until?: string;
  /** A frozen version: the last sequence it applies; it never follows the log past it. */
  untilSeq?: number;
  /** Starts from another version's snapshot (same code, whole log) at this checkpoint instead of from the start (`query --as-of`). */
  seed?: { version: number; checkpoint: number };
  /** Event-type filters the processor declared. */
  subjects: string[];
  state: VersionState;
  error?: VersionFailure;
  createdAt: string;
  caughtUpAt?: string;
  /** Promote as soon as it has caught up (`--promote`). */
  promoteWhenCaughtUp?: boolean;
  /** The processor's promotion count when `--promote` was asked for: a promotion made since wins over it. */
  promoteAfter?: number;
  /** For a pipeline stage: the upstream processor version whose output this version reads. */
  source?: { processor: string; version: number };
  /** Named read-only queries the code declares. */
  queries?: Record<string, string>;
  /** For `kappa replay`: the version whose code this one runs. */
  replayOf?: number;
  /** Deployed with `--no-schema-check`: the build does not look at schema versions. */
  schemaCheck?: false;
  /** Schema versions the build met that the code has no upcaster for, as of its catch-up or failure. */
  schemaWarnings?: SchemaNote[];
  /** The worker that last claimed this version's writer lease, with the lease's fencing token. */
  writer?: WriterFence & { since: string };
}

/** A writer's identity and fencing token (the KV revision its lease was acquired at): larger is newer. */
export interface WriterFence {
  worker: string;
  token: number;
}

/** A change to a processor, for `kappa history`. */
export interface HistoryEntry {
  at: string;
  action: "deploy" | "replay" | "caught-up" | "promote" | "rollback" | "retire" | "fail";
  version: number;
  /** For promote and rollback: the version that was live before. */
  previous?: number | null;
  /** For caught-up: the checkpoint the version had when it caught up (so also where a --promote or first version went live). */
  seq?: number;
  detail?: string;
}

/** Everything the catalog knows about one processor. */
export interface ProcessorRecord {
  name: string;
  live: number | null;
  /** Earlier live versions, most recent last, for rollback. */
  previousLive: number[];
  nextVersion: number;
  /** How many times the live pointer was moved by a promotion or rollback (not the first version going live by itself). */
  promotions?: number;
  versions: Record<string, VersionRecord>;
  history: HistoryEntry[];
}

/** What a worker reports about a version it runs (written often, separate from the record). */
export interface VersionStats {
  checkpoint: number;
  /** Events applied since the version started. */
  applied: number;
  /** Matching events still to read (0 = caught up at `at`). */
  pending: number;
  logHead: number;
  eventsPerSec: number;
  caughtUp: boolean;
  at: string;
  walBytes?: number;
  deadLetters?: number;
  outbox?: number;
  /** Batch apply durations: cumulative counts per upper bound in ms (Prometheus-style), with sum and count. */
  batchMs?: { le: number[]; counts: number[]; sum: number; count: number };
  /** Schema versions met so far that the code has no upcaster for. */
  schemaWarnings?: SchemaNote[];
  /** Last transient trouble (NATS or SQLite), if any. */
  trouble?: string;
}
