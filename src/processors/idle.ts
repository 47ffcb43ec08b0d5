import type { JetStreamManager } from "@nats-io/jetstream";
import { nextMatchingSeq } from "../log/index.js";

/**
 * The stream's state when nothing the version reads lies in (from, until], else null. A version with a
 * subject filter may see no message for a long time: it learns it has caught up from the stream, not from arrivals.
 */
export async function nothingMatchingAfter(jsm: JetStreamManager, input: { stream: string; prefix: string }, subjects: string[] | undefined, from: number, until = Infinity): Promise<{ head: number; state: { first_seq: number; num_deleted?: number } } | null> {
  const state = (await jsm.streams.info(input.stream)).state;
  const next = await nextMatchingSeq(jsm, input.stream, input.prefix, subjects?.length === 1 ? subjects[0] : undefined, from);
  return next !== null && next <= until ? null : { head: state.last_seq, state };
}
