import { jetstreamManager, StorageType, DiscardPolicy, RetentionPolicy } from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/nats-core";
import { wrapJsError, isNotFound, replicasFor } from "../log/index.js";

/** Where one processor version's emitted events live: its own stream, subjects `derived.<processor>.v<version>.<type>`. */
export interface OutputSpec {
  stream: string;
  prefix: string;
  /** The event stream it derives from: outputs keep as many replicas as it does. */
  log?: string;
}

/**
 * The output of one processor version. Each version gets a stream of its own: rebuilding version 2 never
 * touches what version 1 emitted, the outbox's checks (the stream's last emit, Nats-Expected-Last-Sequence)
 * are per stream, and a reader needs no subject filter (measured again on 2.15.1: bench/RESULTS.md).
 */
export function outputOf(stream: string, processor: string, version: number): OutputSpec {
  return { stream: `${stream}_OUT_${processor}_v${version}`, prefix: `derived.${processor}.v${version}`, log: stream };
}

/** The subject in a version's output stream where writers install their fences (outside the prefix, so readers skip it). */
export function fenceSubject(out: OutputSpec): string {
  return `kappa_fence.${out.prefix}`;
}

/** Output streams known to exist, per connection (another connection may be another server or store). */
const ensured = new WeakMap<NatsConnection, Set<string>>();

/** Forgets that an output stream exists (it was found missing: a wiped or recreated store), so the next ensure creates it. */
export function forgetOutputStream(nc: NatsConnection, out: OutputSpec): void {
  ensured.get(nc)?.delete(out.stream);
}

/** Creates an output stream if missing: append-only like the main log. (What it already holds is read from its last message, not its duplicate window: see OutboxPublisher.) */
export async function ensureOutputStream(nc: NatsConnection, out: OutputSpec): Promise<void> {
  let known = ensured.get(nc);
  if (!known) ensured.set(nc, (known = new Set()));
  if (known.has(out.stream)) return;
  const jsm = await jetstreamManager(nc);
  try {
    const info = await jsm.streams.info(out.stream);
    // Streams made before writers were fenced lack the fence subject.
    if (!info.config.subjects?.includes(fenceSubject(out))) {
      await jsm.streams.update(out.stream, { ...info.config, subjects: [...(info.config.subjects ?? []), fenceSubject(out)] });
    }
  } catch (err) {
    if (!isNotFound(err)) throw wrapJsError(err, out.stream);
    await jsm.streams.add({
      name: out.stream,
      subjects: [`${out.prefix}.>`, fenceSubject(out)],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      deny_delete: true,
      deny_purge: true,
      duplicate_window: nanos(60 * 60 * 1000),
      num_replicas: out.log ? await replicasFor(nc, out.log) : 1,
    });
  }
  known.add(out.stream);
}
