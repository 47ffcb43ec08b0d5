import { createHash } from "node:crypto";
import type { NatsConnection } from "@nats-io/nats-core";
import { Kvm, type KV } from "@nats-io/kv";
import { KappaError, messageOf } from "../errors.js";
import { replicasFor } from "../log/index.js";

/** The heartbeat bucket's name for a stream. */
export function workersBucket(stream: string): string {
  return `${stream}_workers`;
}

/** A worker that has not reported for this long is shown as silent. */
export const SILENT_AFTER_MS = 5000;

/** One version as a worker holds it. */
export interface HeldVersion {
  processor: string;
  version: number;
  checkpoint: number;
  /** Matching events still to read, as the worker last saw them. */
  pending: number;
  caughtUp: boolean;
  /** This worker is the version's writer (holds its lease). */
  writer: boolean;
  failed?: boolean;
}

/** What a worker reports on every heartbeat. */
export interface WorkerBeat {
  worker: string;
  host: string;
  pid: number;
  dataDir: string;
  /** Placement: the processors it holds, or null for all. */
  processors: string[] | null;
  startedAt: string;
  at: string;
  versions: HeldVersion[];
}

/** A heartbeat as read back, with the server's time of it and whether it is too old. */
export interface WorkerSeen extends WorkerBeat {
  lastSeen: string;
  silent: boolean;
}

/** KV keys allow letters, digits and -_=/.; a worker id may hold more (host:dir), so it is hashed in. */
function keyOf(worker: string): string {
  const safe = worker.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 60);
  return `w.${safe}_${createHash("sha256").update(worker).digest("hex").slice(0, 8)}`;
}

/** Workers' heartbeats in a KV bucket: every worker writes its own key; an hour of silence removes it. */
export class WorkerRegistry {
  private constructor(readonly kv: KV) {}

  /** Opens (creating if needed, with `replicas` or the stream's own) the heartbeat bucket. */
  static async open(nc: NatsConnection, stream: string, replicas?: number): Promise<WorkerRegistry> {
    try {
      const kv = await new Kvm(nc).create(workersBucket(stream), { history: 1, ttl: 60 * 60 * 1000, replicas: await replicasFor(nc, stream, replicas) });
      return new WorkerRegistry(kv);
    } catch (err) {
      throw new KappaError("WORKERS_UNAVAILABLE", `cannot open the heartbeat bucket ${workersBucket(stream)}: ${messageOf(err)}`, {
        hint: "check that JetStream is enabled and reachable (`kappa log info`)",
        cause: err,
      });
    }
  }

  /** Writes one heartbeat. */
  async beat(b: WorkerBeat): Promise<void> {
    await this.kv.put(keyOf(b.worker), JSON.stringify(b));
  }

  /** Removes a worker that stopped cleanly. */
  async remove(worker: string): Promise<void> {
    await this.kv.delete(keyOf(worker));
  }

  /** Every worker that reported in the last hour, silent ones marked (by the server's timestamp of the last beat). */
  async list(now = Date.now()): Promise<WorkerSeen[]> {
    const out: WorkerSeen[] = [];
    const keys: string[] = [];
    for await (const k of await this.kv.keys("w.>")) keys.push(k);
    for (const k of keys.sort()) {
      const e = await this.kv.get(k);
      if (!e || e.operation !== "PUT" || e.length === 0) continue;
      const b = e.json<WorkerBeat>();
      out.push({ ...b, lastSeen: e.created.toISOString(), silent: now - e.created.getTime() > SILENT_AFTER_MS });
    }
    return out.sort((a, b) => a.worker.localeCompare(b.worker));
  }
}
