// The apply thread of one view version: owns the view file, loads the processor's code, unpacks the
// batches the runner hands over (raw bytes), and runs handlers and SQLite here, off the NATS thread.
// Runs bundled (threadBundle.ts), so it imports files directly rather than the packages' index barrels.
import { parentPort, workerData } from "node:worker_threads";
import { messageOf } from "../errors.js";
import { BatchUnpacker } from "../log/packed.js";
import { firstGap } from "../log/gaps.js";
import { ViewWriter } from "../views/viewFile.js";
import { BatchApplier, isTransientSqliteError } from "./apply.js";
import { loadProcessor } from "./load.js";
import { lowerThreadPriority } from "./liveFirst.js";
import { PROGRESS_SEQ_OFFSET, PROGRESS_TICKS, PROGRESS_TYPE, type FromThread, type ThreadInit, type ToThread } from "./applyProtocol.js";

const init = workerData as ThreadInit;
const port = parentPort!;
const words = new Int32Array(init.progress);
const seqSlot = new Float64Array(init.progress, PROGRESS_SEQ_OFFSET, 1);

function send(m: FromThread): void {
  port.postMessage(m);
}

function errorReport(err: unknown): Extract<FromThread, { kind: "error" }> {
  const code = (err as { code?: unknown })?.code;
  const transient = isTransientSqliteError(err) || code === "VIEW_OPEN_FAILED";
  return { kind: "error", message: messageOf(err), transient, ...(typeof code === "string" ? { code } : {}) };
}

let writer!: ViewWriter;
let applier!: BatchApplier;
/** Batches of this generation or older are dropped: one of them failed, and the runner reads again from the checkpoint. */
let brokenGen = -1;
let halted = false;
const unpacker = new BatchUnpacker(init.timeHeader);
const restorePriority = init.background ? lowerThreadPriority() : () => {};
try {
  const def = await loadProcessor(init.code, init.codeDir, init.origin);
  const id = { processor: init.processor, version: init.version, codeHash: init.codeHash, log: init.log, entry: init.entry };
  writer = ViewWriter.open(init.path, id, def.schema, { busyTimeoutMs: init.busyTimeoutMs });
  applier = new BatchApplier(writer, def, init.version, {
    ...(init.schemaCheck === false ? { schemaCheck: false } : {}),
    beforeEvent: (raw) => {
      seqSlot[0] = raw.seq;
      words[PROGRESS_TYPE] = (raw as { typeIndex?: number }).typeIndex ?? -1;
      Atomics.add(words, PROGRESS_TICKS, 1);
    },
  });
  const notes = applier.schemaWatch?.notes ?? [];
  send({ kind: "ready", checkpoint: writer.checkpoint, ...(writer.replaced ? { replaced: writer.replaced } : {}), ...(notes.length ? { schema: notes } : {}) });
  port.on("message", onMessage);
} catch (err) {
  // Closing the port lets the thread end once the report is out.
  send(errorReport(err));
  port.close();
}

function onMessage(m: ToThread): void {
  if (m.kind === "close") {
    writer.close();
    send({ kind: "closed" });
    port.close();
    return;
  }
  if (m.kind === "foreground") {
    restorePriority();
    return;
  }
  try {
    if (m.kind === "advance") {
      if (writer.checkpoint === m.from && m.seq > m.from) writer.commit(m.seq, () => {});
      send({ kind: "applied", checkpoint: writer.checkpoint, applied: applier.applied, skipped: applier.skipped, ms: 0, events: 0, pending: -1, gen: -1, emitted: 0 });
      return;
    }
    if (halted || m.gen <= brokenGen) return;
    const t0 = performance.now();
    const until = init.untilSeq;
    const report = { kind: "applied" as const, applied: 0, skipped: 0, ms: 0, events: 0, pending: m.batch.pending, gen: m.gen, emitted: 0 };
    const emitsBefore = applier.emits;
    if (until !== undefined && writer.checkpoint >= until) {
      // Frozen: a batch still in flight after the stop.
      send({ ...report, checkpoint: writer.checkpoint, applied: applier.applied, skipped: applier.skipped, reached: true });
      return;
    }
    let events = unpacker.unpack(m.batch);
    const gap = firstGap(events, Math.max(writer.checkpoint + 1, init.startSeq ?? 1), m.batch.skipped);
    if (gap !== null) {
      halted = true;
      send({ ...report, checkpoint: writer.checkpoint, applied: applier.applied, skipped: applier.skipped, gap });
      return;
    }
    const reached = until !== undefined && m.batch.lastSeq >= until;
    if (until !== undefined && m.batch.lastSeq > until) events = events.filter((e) => e.seq <= until);
    const poison = applier.apply(events);
    // Under "halt" nothing after the poison event may be applied, not even from batches already queued.
    if (poison) halted = true;
    else if (reached && writer.checkpoint < until!) writer.commit(until!, () => {});
    Atomics.add(words, PROGRESS_TICKS, 1);
    send({
      ...report,
      checkpoint: writer.checkpoint,
      applied: applier.applied,
      skipped: applier.skipped,
      ms: performance.now() - t0,
      events: events.length,
      emitted: applier.emits - emitsBefore,
      pending: until === undefined ? m.batch.pending : Math.max(0, Math.min(m.batch.pending, until - m.batch.lastSeq)),
      ...(poison ? { poison: { seq: poison.event.seq, type: poison.event.type, message: poison.message } } : {}),
      ...(reached && !poison ? { reached: true } : {}),
      ...(applier.schemaWatch?.takeChanged() ? { schema: applier.schemaWatch.notes } : {}),
    });
  } catch (err) {
    // Nothing of the failed transaction is kept; the batches queued behind it would leave a gap, so they
    // are dropped and the runner reads again from the checkpoint.
    if (m.kind === "batch") brokenGen = m.gen;
    send({ ...errorReport(err), checkpoint: writer.checkpoint });
  }
}
