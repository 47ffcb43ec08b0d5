import type { JetStreamManager } from "@nats-io/jetstream";
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
