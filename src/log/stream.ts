import { jetstreamManager, StorageType, RetentionPolicy, DiscardPolicy, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/nats-core";
import { KappaError, NotFoundError, messageOf } from "../errors.js";

/** Where events live: the stream name and the subject prefix before each event type. */
export interface StreamSpec {
  stream: string;
  prefix: string;
  /** Idempotency window for Nats-Msg-Id, ms (default 2 minutes, JetStream's own default). */
  duplicateWindowMs?: number;
  /** Replicas of everything Kappa creates for this stream (stream, catalog, code, outputs); default: the stream's own, else 1. */
  replicas?: number;
  /** Use an existing stream that is not append-only (delete or purge allowed, limits that drop events); `kappa status` says so. */
  allowUnsafeLog?: boolean;
}

export const DEFAULT_STREAM: StreamSpec = { stream: "KAPPA", prefix: "events" };

/** The stream's extent. */
export interface LogInfo {
  stream: string;
  subjects: string[];
  firstSeq: number;
  lastSeq: number;
  messages: number;
  bytes: number;
  firstTime: string | null;
  lastTime: string | null;
  /** How many copies the stream keeps. */
  replicas: number;
  /** The cluster's name, its leader for this stream, and each replica with whether it is current; absent on a single server. */
  cluster?: { name?: string; leader?: string; replicas: { name: string; current: boolean; offline?: boolean; lag?: number; active?: number }[] };
  /** Why the stream is not append-only (empty when it is). */
  unsafe: string[];
}

/** What lets an existing stream lose or edit events: delete or purge allowed, retention or limits that drop them. */
export function appendOnlyProblems(c: Partial<StreamConfig>): string[] {
  const p: string[] = [];
  if (!c.deny_delete) p.push("allows deleting events");
  if (!c.deny_purge) p.push("allows purging");
  if (c.retention && c.retention !== RetentionPolicy.Limits) p.push(`retention "${c.retention}" removes events once consumed`);
  if ((c.max_age ?? 0) > 0) p.push(`drops events older than ${Math.round(c.max_age! / 1e9)} s (max_age)`);
  const dropsOld = c.discard !== DiscardPolicy.New;
  if (dropsOld && (c.max_msgs ?? -1) > 0) p.push(`drops the oldest events beyond ${c.max_msgs} (max_msgs)`);
  if (dropsOld && (c.max_bytes ?? -1) > 0) p.push(`drops the oldest events beyond ${c.max_bytes} bytes (max_bytes)`);
  if ((c.max_msgs_per_subject ?? -1) > 0) p.push(`keeps only ${c.max_msgs_per_subject} events per type (max_msgs_per_subject)`);
  if ((c as { allow_msg_ttl?: boolean }).allow_msg_ttl) p.push("lets publishers give events a time to live (allow_msg_ttl)");
  return p;
}

/** Creates the stream if it is missing (append-only: delete and purge denied), and checks an existing one. */
export async function ensureStream(nc: NatsConnection, spec: StreamSpec): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc).catch((err: unknown) => {
    throw wrapJsError(err, spec.stream);
  });
  const subject = `${spec.prefix}.>`;
  try {
    const info = await jsm.streams.info(spec.stream);
    if (!info.config.subjects?.includes(subject)) {
      throw new KappaError("STREAM_MISMATCH", `stream ${spec.stream} exists but does not hold ${subject} (it holds ${info.config.subjects?.join(", ")})`, {
        hint: "pass --stream with another name, or the prefix this stream uses",
      });
    }
    checkReplicas(spec, info.config.num_replicas);
    const unsafe = appendOnlyProblems(info.config);
    if (unsafe.length > 0 && !spec.allowUnsafeLog) {
      throw new KappaError("STREAM_NOT_APPEND_ONLY", `stream ${spec.stream} is not append-only: it ${unsafe.join(", ")} — a Kappa log must never lose an event`, {
        hint: "pass --stream with a new name (Kappa creates it append-only), or --allow-unsafe-log to use this one anyway (`kappa status` then says so)",
      });
    }
    // Atomic batches keep `append --file` in file order across a NATS drop; switching them on edits nothing stored.
    if (!info.config.allow_atomic) await jsm.streams.update(spec.stream, { allow_atomic: true }).catch(() => {});
    return jsm;
  } catch (err) {
    if (err instanceof KappaError) throw err;
    if (!isNotFound(err)) throw wrapJsError(err, spec.stream);
  }
  await jsm.streams.add({
    name: spec.stream,
    subjects: [subject],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    deny_delete: true,
    deny_purge: true,
    duplicate_window: nanos(spec.duplicateWindowMs ?? 120_000),
    // All-or-nothing appends (`append --file`, POST /events) are atomic batches (every supported server has them).
    allow_atomic: true,
    num_replicas: spec.replicas ?? 1,
  });
  return jsm;
}

/** Whether appends to this stream can use atomic batches. */
export async function allowsAtomic(jsm: JetStreamManager, stream: string): Promise<boolean> {
  try {
    return (await jsm.streams.info(stream)).config.allow_atomic === true;
  } catch (err) {
    throw wrapJsError(err, stream);
  }
}

/** An existing stream with fewer copies than --replicas asks for is reported, never silently used. */
function checkReplicas(spec: StreamSpec, has: number | undefined): void {
  if (spec.replicas !== undefined && (has ?? 1) < spec.replicas) {
    throw new KappaError("STREAM_REPLICAS", `stream ${spec.stream} keeps ${has ?? 1} replica(s), but --replicas asks for ${spec.replicas}`, {
      hint: `raise them with \`kappa --replicas ${spec.replicas} log replicas --apply\` (or \`nats stream edit ${spec.stream} --replicas ${spec.replicas}\`), or pass --replicas ${has ?? 1} (env KAPPA_REPLICAS)`,
    });
  }
}

/** The replicas for something Kappa creates beside a stream: `asked` when given, else the stream's own, else 1. */
export async function replicasFor(nc: NatsConnection, stream: string, asked?: number): Promise<number> {
  if (asked !== undefined) return asked;
  try {
    const info = await (await jetstreamManager(nc)).streams.info(stream);
    return info.config.num_replicas ?? 1;
  } catch {
    return 1;
  }
}

/** Makes sure the stream accepts atomic batches, turning them on for a stream created without them. */
export async function enableAtomicBatches(nc: NatsConnection, spec: StreamSpec): Promise<"already" | "enabled"> {
  const jsm = await ensureStream(nc, spec);
  try {
    const info = await jsm.streams.info(spec.stream);
    if (info.config.allow_atomic) return "already";
    await jsm.streams.update(spec.stream, { ...info.config, allow_atomic: true });
    return "enabled";
  } catch (err) {
    throw wrapJsError(err, spec.stream);
  }
}

/** The stream's first and last sequence, count and size; fails with a hint when the stream is missing. */
export async function logInfo(jsm: JetStreamManager, stream: string): Promise<LogInfo> {
  try {
    const info = await jsm.streams.info(stream);
    const s = info.state;
    return {
      stream,
      subjects: info.config.subjects ?? [],
      firstSeq: s.first_seq,
      lastSeq: s.last_seq,
      messages: s.messages,
      bytes: s.bytes,
      firstTime: s.messages > 0 ? s.first_ts : null,
      lastTime: s.messages > 0 ? s.last_ts : null,
      replicas: info.config.num_replicas ?? 1,
      ...(info.cluster
        ? {
            cluster: {
              name: info.cluster.name,
              leader: info.cluster.leader,
              replicas: [
                ...(info.cluster.leader ? [{ name: info.cluster.leader, current: true }] : []),
                ...(info.cluster.replicas ?? []).map((r) => ({ name: r.name, current: r.current, ...(r.offline ? { offline: true } : {}), lag: r.lag, active: r.active })),
              ],
            },
          }
        : {}),
      unsafe: appendOnlyProblems(info.config),
    };
  } catch (err) {
    throw wrapJsError(err, stream);
  }
}

/**
 * Which log a stream is: its name and the time the server created it. A stream deleted and made
 * again (a wiped NATS store) under the same name is another log.
 */
export async function logIdentity(jsm: JetStreamManager, stream: string): Promise<string> {
  try {
    return `${stream}@${(await jsm.streams.info(stream)).created}`;
  } catch (err) {
    throw wrapJsError(err, stream);
  }
}

/** True when a JetStream API error says the stream (or message) does not exist. */
export function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; api_error?: { err_code?: number }; message?: string };
  return e?.api_error?.err_code === 10059 || e?.api_error?.err_code === 10037 || /not found/i.test(e?.message ?? "");
}

/** Maps JetStream failures on a stream to errors that say what to do. */
export function wrapJsError(err: unknown, stream: string): Error {
  if (err instanceof KappaError) return err;
  if (isNotFound(err)) {
    return new NotFoundError(`stream ${stream} not found`, {
      hint: "append an event first (`kappa append`), run `kappa dev`, or pass --stream with the right name",
      cause: err,
    });
  }
  if (/jetstream not enabled|503/i.test(messageOf(err))) {
    return new KappaError("JETSTREAM_DISABLED", `JetStream is not enabled on this NATS server: ${messageOf(err)}`, {
      hint: "start nats-server with -js, or use `kappa dev`",
      cause: err,
    });
  }
  return new KappaError("NATS_ERROR", `JetStream request on stream ${stream} failed: ${messageOf(err)}`, {
    hint: "check that NATS is reachable (`kappa log info`) and retry",
    cause: err,
  });
}
