import type { JetStreamManager } from "@nats-io/jetstream";
import { firstMissingSeq, nextMatchingSeq } from "../log/index.js";

/**
 * The stream's state when nothing the version reads lies in (from, until], else null. A version with a
 * subject filter may see no message for a long time: it learns it has caught up from the stream, not from arrivals.
 */
export async function nothingMatchingAfter(jsm: JetStreamManager, input: { stream: string; prefix: string }, subjects: string[] | undefined, from: number, until = Infinity): Promise<{ head: number; state: { first_seq: number; num_deleted?: number } } | null> {
  const state = (await jsm.streams.info(input.stream)).state;
  const next = await nextMatchingSeq(jsm, input.stream, input.prefix, subjects?.length === 1 ? subjects[0] : undefined, from);
  return next !== null && next <= until ? null : { head: state.last_seq, state };
}

/** What a version that received nothing for a while may conclude from the stream. */
export type IdleVerdict =
  /** Matching events lie ahead: keep reading. */
  | { kind: "busy" }
  /** The log no longer holds an event this version has not applied. */
  | { kind: "gap"; seq: number }
  /** Nothing matching up to `upTo` (the head, or the version's last sequence): the checkpoint may move there. */
  | { kind: "idle"; upTo: number };

/**
 * Asks the stream what lies after `checkpoint` for a version reading `subjects` from `startSeq` up to
 * `untilSeq`. A version that starts later in the log owes nothing before its start; events a filter skips
 * must still exist (never be gone), else that is a gap.
 */
export async function idleVerdict(jsm: JetStreamManager, input: { stream: string; prefix: string }, subjects: string[] | undefined, checkpoint: number, startSeq = 1, untilSeq = Infinity): Promise<IdleVerdict> {
  const from = Math.max(checkpoint, startSeq - 1);
  const idle = await nothingMatchingAfter(jsm, input, subjects, from, untilSeq);
  if (!idle) return { kind: "busy" };
  const upTo = Math.min(idle.head, untilSeq);
  const missing = await firstMissingSeq(jsm, input.stream, idle.state, from, upTo);
  return missing !== null ? { kind: "gap", seq: missing } : { kind: "idle", upTo };
}
