import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { KappaError } from "../errors.js";
import { LogSubscription, nextMatchingSeq, type StreamSpec } from "../log/index.js";
import { ViewWriter, type VersionRecord } from "../views/index.js";
import { BatchApplier } from "./apply.js";
import { outputOf } from "./derived.js";
import type { ProcessorDefinition } from "./define.js";

/** A throwaway rebuild of a version in a temporary file; `close()` deletes it. */
export interface Shadow {
  writer: ViewWriter;
  dir: string;
  close(): void;
}

/** Rebuilds a version from the log into a temporary file, applying exactly the events up to `untilSeq`. */
export async function buildShadow(nc: NatsConnection, spec: StreamSpec, record: VersionRecord, def: ProcessorDefinition, untilSeq: number): Promise<Shadow> {
  const dir = mkdtempSync(join(tmpdir(), "kappa-shadow-"));
  const writer = ViewWriter.open(join(dir, "shadow.sqlite"), { processor: def.name, version: record.version, codeHash: record.codeHash }, def.schema);
  const shadow = { writer, dir, close: () => (writer.close(), rmSync(dir, { recursive: true, force: true })) };
  try {
    // Emits go nowhere: the shadow must not publish anything.
    const applier = new BatchApplier(writer, def, record.version);
    const input = record.source ? outputOf(spec.stream, record.source.processor, record.source.version) : spec;
    const first = await nextMatchingSeq(await jetstreamManager(nc), input.stream, input.prefix, def.subjects?.length === 1 ? def.subjects[0] : undefined, (record.startSeq ?? 1) - 1);
    if (first === null || first > untilSeq || untilSeq < (record.startSeq ?? 1)) {
      if (untilSeq > writer.checkpoint) writer.commit(untilSeq, () => {});
      return shadow;
    }
    await new Promise<void>((resolve, reject) => {
      let done = false;
      let sub: LogSubscription | undefined;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        void sub?.stop();
        if (err) reject(err);
        else resolve();
      };
      LogSubscription.open(jetstream(nc), {
        stream: input.stream,
        prefix: input.prefix,
        startSeq: record.startSeq ?? 1,
        timeHeader: record.source !== undefined,
      }, (b) => {
        if (done) return;
        const events = b.events.filter((e) => e.seq <= untilSeq);
        if (events.length) {
          const poison = applier.apply(events);
          if (poison) return finish(new KappaError("SHADOW_FAILED", `rebuild stopped: ${poison.message}`, { hint: "the version's code fails on this event; see `kappa status`" }));
        }
        if (b.lastSeq >= untilSeq || b.pending === 0) {
          // Account for events at the end that did not match the filter.
          if (writer.checkpoint < untilSeq) writer.commit(untilSeq, () => {});
          finish();
        }
      }).then((s) => {
        sub = s;
        if (done) void s.stop();
        void s.closed.then((e) => e && finish(e));
      }, reject);
    });
    return shadow;
  } catch (err) {
    shadow.close();
    throw err;
  }
}
