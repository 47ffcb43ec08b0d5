import { jetstreamManager, type StreamInfo } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { KappaError, messageOf } from "../errors.js";
import type { StreamSpec } from "../log/index.js";
import { catalogBucket, workersBucket } from "../views/index.js";
import { codeBucket } from "./codeStore.js";
import { leaseBucket } from "./lease.js";
import { snapshotBucket } from "./snapshots.js";

/** Something Kappa keeps in JetStream with fewer copies than asked for. */
export interface ReplicaShortfall {
  /** The JetStream stream behind it (a KV bucket is `KV_<bucket>`, an object store `OBJ_<bucket>`). */
  stream: string;
  /** What it holds, for people: "the catalog", "the code store", "the output of orders_by_user v2". */
  what: string;
  has: number;
  wants: number;
  /** Whether `wants` came from --replicas (else it is the log stream's own count). */
  asked: boolean;
  /** The command that raises it. */
  fix: string;
}

/**
 * The buckets and output streams of a Kappa log that keep fewer replicas than `spec.replicas` (else than
 * the log stream itself). JetStream keeps an existing bucket's replicas whatever a later create asks,
 * so a bucket made on one server stays a single copy after the cluster grows, silently, unless told.
 */
export async function replicaShortfalls(nc: NatsConnection, spec: StreamSpec): Promise<ReplicaShortfall[]> {
  const jsm = await jetstreamManager(nc);
  const infos: StreamInfo[] = [];
  for await (const si of jsm.streams.list()) infos.push(si);
  const log = infos.find((s) => s.config.name === spec.stream);
  const wants = spec.replicas ?? log?.config.num_replicas ?? 1;
  const known = new Map<string, string>([
    [spec.stream, "the log"],
    [`KV_${catalogBucket(spec.stream)}`, "the catalog"],
    [`KV_${workersBucket(spec.stream)}`, "the worker heartbeats"],
    [`KV_${leaseBucket(spec.stream)}`, "the writer leases"],
    [`OBJ_${codeBucket(spec.stream)}`, "the code store"],
    [`OBJ_${snapshotBucket(spec.stream)}`, "the snapshots"],
  ]);
  const output = new RegExp(`^${spec.stream.replace(/[^A-Za-z0-9]/g, "\\$&")}_OUT_(.+)_v(\\d+)$`);
  const short: ReplicaShortfall[] = [];
  for (const si of infos) {
    const name = si.config.name;
    const out = output.exec(name);
    const what = known.get(name) ?? (out ? `the output of ${out[1]} v${out[2]}` : undefined);
    const has = si.config.num_replicas ?? 1;
    if (what === undefined || has >= wants) continue;
    short.push({ stream: name, what, has, wants, asked: spec.replicas !== undefined, fix: `nats stream edit ${name} --replicas ${wants}` });
  }
  // Kappa's own buckets first, in a fixed order, then the output streams by name.
  const rank = (n: string) => [...known.keys()].indexOf(n) + 1 || known.size + 1;
  return short.sort((a, b) => rank(a.stream) - rank(b.stream) || a.stream.localeCompare(b.stream));
}

/** Raises each shortfall to the replicas it wants (JetStream copies the data to the new replicas while serving); the streams raised. */
export async function raiseReplicas(nc: NatsConnection, short: ReplicaShortfall[]): Promise<ReplicaShortfall[]> {
  const jsm = await jetstreamManager(nc);
  const done: ReplicaShortfall[] = [];
  for (const s of short) {
    try {
      const info = await jsm.streams.info(s.stream);
      await jsm.streams.update(s.stream, { ...info.config, num_replicas: s.wants });
      done.push(s);
    } catch (err) {
      throw new KappaError("REPLICAS_NOT_RAISED", `cannot raise ${s.what} (${s.stream}) to ${s.wants} replicas: ${messageOf(err)}${done.length ? ` (raised before it: ${done.map((d) => d.stream).join(", ")})` : ""}`, {
        hint: "a stream keeps at most as many replicas as the cluster has servers (`kappa log info` lists them); pass a smaller --replicas",
        cause: err,
      });
    }
  }
  return done;
}

/** The shortfalls as one warning and one hint (the commands that fix them), in the house's message/hint shape. */
export function shortfallWarning(short: ReplicaShortfall[]): { message: string; hint: string } | undefined {
  if (short.length === 0) return undefined;
  const wants = short[0]!.wants;
  const why = short[0]!.asked ? `--replicas asks for ${wants}` : `the log keeps ${wants}`;
  const items = short.map((s) => `${s.what} (${s.stream}) keeps ${s.has}`).join(", ");
  return {
    message: `fewer replicas than ${why}: ${items}`,
    hint: `raise ${short.length === 1 ? "it" : "them"} with \`kappa ${short[0]!.asked ? `--replicas ${wants} ` : ""}log replicas --apply\` (or ${short.map((s) => `\`${s.fix}\``).join(" and ")}); the servers copy the data while serving`,
  };
}
