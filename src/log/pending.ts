import { type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { wrapJsError, isNotFound } from "./stream.js";

/**
 * The sequence of the first event after `afterSeq` whose type matches `typeFilter`, or null when
 * there is none: used to decide "caught up" for a filtered reader that has seen nothing for a while.
 */
export async function nextMatchingSeq(jsm: JetStreamManager, stream: string, prefix: string, typeFilter: string | undefined, afterSeq: number): Promise<number | null> {
  try {
    const m = await jsm.streams.getMessage(stream, { seq: afterSeq + 1, next_by_subj: `${prefix}.${typeFilter ?? ">"}` } as unknown as { seq: number });
    return m ? m.seq : null;
  } catch (err) {
    if (isNotFound(err)) return null;
    throw wrapJsError(err, stream);
  }
}

/**
 * The sequence of the first event the log stored at or after `time`, or the sequence after the last
 * event when there is none yet: a time offset becomes a sequence once, so restarts never re-evaluate it.
 * Each step is a request that either answers or fails — never a wait that, timing out on a slow server,
 * would pass for "no event at or after this time" and start the version at the end.
 */
export async function firstSeqAtOrAfter(_js: JetStreamClient, jsm: JetStreamManager, stream: string, time: string): Promise<number> {
  try {
    const s = (await jsm.streams.info(stream)).state;
    if (s.messages === 0 || Date.parse(s.last_ts) < Date.parse(time)) return s.last_seq + 1;
    if (Date.parse(s.first_ts) >= Date.parse(time)) return s.first_seq;
    const m = await jsm.streams.getMessage(stream, { start_time: time } as unknown as { seq: number });
    return m ? m.seq : s.last_seq + 1;
  } catch (err) {
    throw wrapJsError(err, stream);
  }
}

export { firstGap } from "./gaps.js";

/**
 * The first sequence in (after, upTo] that the stream no longer holds (purged, deleted or expired), or null.
 * `state` is a stream info's state; the list of deleted sequences is fetched only when the stream has some.
 */
export async function firstMissingSeq(jsm: JetStreamManager, stream: string, state: { first_seq: number; num_deleted?: number }, after: number, upTo: number): Promise<number | null> {
  if (upTo <= after) return null;
  if (state.first_seq > after + 1) return after + 1;
  if (!state.num_deleted) return null;
  try {
    const detailed = await jsm.streams.info(stream, { deleted_details: true });
    const gone = (detailed.state.deleted ?? []).filter((q) => q > after && q <= upTo);
    return gone.length > 0 ? Math.min(...gone) : null;
  } catch (err) {
    throw wrapJsError(err, stream);
  }
}
