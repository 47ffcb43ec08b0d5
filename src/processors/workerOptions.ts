import { hostname } from "node:os";
import type { NatsConnection } from "@nats-io/nats-core";
import type { BatchLimits, NatsOptions, StreamSpec } from "../log/index.js";
import type { DataDir } from "../views/index.js";
import type { WorkerLock } from "./workerLock.js";

/** How a worker runs. */
export interface WorkerOptions {
  nc: NatsConnection;
  spec: StreamSpec;
  dataDir: DataDir;
  limits?: Partial<BatchLimits>;
  /** How long a view write waits for a SQLite lock before it is retried (default 5000 ms). */
  busyTimeoutMs?: number;
  /** A handler that does not return within this fails its version; its apply thread is stopped (default 10 s). */
  handlerTimeoutMs?: number;
  /**
   * A second connection for versions still catching up: a rebuild's backlog then never sits in the socket
   * ahead of a live version's next event (the client parses a socket's bytes in order). Default: `nc`.
   */
  bulkNc?: NatsConnection;
  /**
   * How the bulk reader thread connects: versions catching up then read on a thread of their own, with
   * its own connection, at lower priority; the main thread parses only live versions' messages. Takes
   * the place of `bulkNc` (`kappa run` and `kappa dev` use it).
   */
  bulkReader?: NatsOptions;
  /** One line per notable thing (deploys seen, catch-ups, failures, retries). */
  log?: (line: string) => void;
  /** How often the whole catalog is read again, in case the watch stalled (default 5000 ms). */
  resyncMs?: number;
  /** How often retired versions' files are looked at for deletion (default 1000 ms). */
  sweepMs?: number;
  /** The data dir's lock, already taken by the caller (`kappa dev` takes it before anything else); the worker then leaves releasing it to the caller. */
  lock?: WorkerLock;
  /** This worker's name among several (default: host name and data dir). */
  workerId?: string;
  /** Placement: hold only these processors (default: all). */
  processors?: string[];
  /** Writer lease time to live; another replica takes over about this long after a writer stops (default 3000 ms). */
  leaseTtlMs?: number;
  /** Answer queries on the held views over NATS (`kappa query --remote`); default true. */
  serveQueries?: boolean;
  /** Snapshot every written version this often (default: only when asked, `kappa snapshot`). */
  snapshotEveryMs?: number;
  /** Snapshots kept per version (default 3). */
  snapshotKeep?: number;
  /** No new snapshot of a version on request within this of its newest one (default 10 s). */
  snapshotMinIntervalMs?: number;
}

/** A worker's default id: the host and the data dir, stable across restarts of the same worker. */
export function defaultWorkerId(dataDir: DataDir): string {
  return `${hostname()}:${dataDir.root}`;
}
