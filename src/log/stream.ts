import { jetstreamManager, StorageType, RetentionPolicy, DiscardPolicy, type JetStreamManager } from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/nats-core";
import { KappaError, NotFoundError, messageOf } from "../errors.js";

/** Where events live: the stream name and the subject prefix before each event type. */
export interface StreamSpec {
  stream: string;
  prefix: string;
  /** Idempotency window for Nats-Msg-Id, ms (default 2 minutes, JetStream's own default). */
  duplicateWindowMs?: number;
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
}

/** Creates the stream if it is missing (append-only: delete and purge denied), and checks an existing one. */
export async function ensureStream(nc: NatsConnection, spec: StreamSpec): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  const subject = `${spec.prefix}.>`;
  try {
    const info = await jsm.streams.info(spec.stream);
    if (!info.config.subjects?.includes(subject)) {
      throw new KappaError("STREAM_MISMATCH", `stream ${spec.stream} exists but does not hold ${subject} (it holds ${info.config.subjects?.join(", ")})`, {
        hint: "pass --stream with another name, or the prefix this stream uses",
      });
    }
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
  });
  return jsm;
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
