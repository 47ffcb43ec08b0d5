import type { NatsConnection } from "@nats-io/nats-core";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { InputError } from "../errors.js";
import { firstSeqAtOrAfter, logInfo, parseOffset, formatOffset, type LogBatch, type RawEvent } from "../log/index.js";
import type { ProcessorRecord, VersionRecord } from "../views/index.js";

/** Where a frozen version stops: the offset as given and the last sequence it applies. */
export interface UntilSpec {
  until: string;
  untilSeq: number;
}

/**
 * Resolves `--until <offset>` to the last sequence a frozen version applies: a sequence itself, or for a
 * time the last event the log stored at or before it (times compare at the millisecond, as events show them).
 * The past only: an offset beyond the log's head is refused, so a frozen version never waits for the future.
 */
export async function resolveUntil(nc: NatsConnection, stream: string, text: string, startSeq = 1): Promise<UntilSpec> {
  const o = parseOffset(text);
  const info = await logInfo(await jetstreamManager(nc), stream);
  let untilSeq: number;
  switch (o.kind) {
    case "start":
      throw new InputError("--until start would apply nothing", { hint: "give a sequence or an ISO time, or `end` for the log as it is now" });
    case "end":
      untilSeq = info.lastSeq;
      break;
    case "seq":
      if (o.seq > info.lastSeq) {
        throw new InputError(`--until ${o.seq} is beyond the log's last sequence ${info.lastSeq}`, { hint: "a frozen version is a view of the past: pick a sequence the log already holds (`kappa log info`)", code: "UNTIL_IN_FUTURE" });
      }
      untilSeq = o.seq;
      break;
    case "time": {
      if (Date.parse(o.time) > Date.now()) {
        throw new InputError(`--until ${o.time} is in the future`, { hint: "a frozen version is a view of the past: give a time that has passed", code: "UNTIL_IN_FUTURE" });
      }
      const after = await firstSeqAtOrAfter(jetstream(nc), await jetstreamManager(nc), stream, new Date(Date.parse(o.time) + 1).toISOString());
      untilSeq = after - 1;
      break;
    }
  }
  if (untilSeq < 1) throw new InputError(`the log holds no event at or before ${formatOffset(o)}`, { hint: "`kappa log info` shows the first event's time" });
  // Every event up to the end is gone (purged or expired): the version could only fail on the gap.
  if (info.messages > 0 && untilSeq < info.firstSeq) {
    throw new InputError(`--until ${formatOffset(o)} (seq ${untilSeq}) is before the log's first event, seq ${info.firstSeq}: the events up to it are gone`, { hint: "pick an offset the log still holds (`kappa log info` shows its first event)", code: "UNTIL_GONE" });
  }
  if (untilSeq < startSeq) {
    throw new InputError(`--until ${formatOffset(o)} (seq ${untilSeq}) is before --from (seq ${startSeq})`, { hint: "a frozen version applies the events from --from up to --until: put --until later" });
  }
  return { until: formatOffset(o), untilSeq };
}

/** --promote and --until together would put the past live by accident: refused. */
export function refusePromoteFrozen(opts: { until?: string; promote?: boolean }): void {
  if (opts.until !== undefined && opts.promote) {
    throw new InputError("--promote cannot be combined with --until: a frozen version serves the past", { hint: "build it without --promote; `kappa promote <processor> <version> --force` puts it live if that is really wanted", code: "FROZEN_VERSION" });
  }
}

/** Whether a version is frozen (built `--until` an offset). */
export function isFrozen(v: VersionRecord): boolean {
  return v.untilSeq !== undefined;
}

/**
 * A frozen version that answers "as of `untilSeq`" with the given code: one that reads the whole log
 * (from start) and has not failed or been retired. The newest such version wins. For a pipeline stage
 * the sequence is one of its input's (the upstream version's output stream): only a version reading the
 * same upstream version answers, since seq 500 of another upstream version's output is another moment.
 */
export function findFrozen(rec: ProcessorRecord, untilSeq: number, codeHash: string, source?: VersionRecord["source"]): VersionRecord | undefined {
  return Object.values(rec.versions)
    .filter((v) => v.untilSeq === untilSeq && v.codeHash === codeHash && (v.startSeq ?? 1) <= 1 && v.state !== "retired" && v.state !== "failed" && !v.error)
    .filter((v) => v.source?.processor === source?.processor && v.source?.version === source?.version)
    .sort((a, b) => b.version - a.version)[0];
}

/** A batch cut at a frozen version's last sequence: what to apply, what is still owed, and whether the end is reached. */
export interface ClippedBatch {
  events: RawEvent[];
  pending: number;
  reached: boolean;
}

/** Cuts a batch at `untilSeq` (undefined: a version that follows the log, nothing cut). */
export function clipToUntil(batch: LogBatch, untilSeq: number | undefined): ClippedBatch {
  if (untilSeq === undefined) return { events: batch.events, pending: batch.pending, reached: false };
  const events = batch.lastSeq > untilSeq ? batch.events.filter((e) => e.seq <= untilSeq) : batch.events;
  return { events, pending: Math.max(0, Math.min(batch.pending, untilSeq - batch.lastSeq)), reached: batch.lastSeq >= untilSeq };
}
