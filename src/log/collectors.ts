import type { JsMsg } from "@nats-io/jetstream";
import { RawEventDecoder, type RawEvent } from "./rawEvent.js";
import type { BatchPacker, PackedBatch } from "./packed.js";
import type { LogBatch } from "./reader.js";

/** Gathers messages into one kind of batch (decoded events, or raw bytes for another thread). */
export interface Collector<B> {
  readonly count: number;
  readonly bytes: number;
  add(m: JsMsg, seq: number, timestampNanos: number): void;
  /** A sequence consumed without an event (a writer fence). */
  skip(seq: number): void;
  take(pending: number): B;
}

/** The skipped sequences a batch ending at `lastSeq` carries; later ones stay for the next batch (they lie beyond its checkpoint). */
function splitSkipped(skipped: number[], lastSeq: number): { mine: number[] | undefined; rest: number[] } {
  if (skipped.length === 0) return { mine: undefined, rest: skipped };
  return { mine: skipped.filter((q) => q < lastSeq), rest: skipped.filter((q) => q > lastSeq) };
}

/** Collects RawEvents (the reader's classic batch). */
export class EventCollector implements Collector<LogBatch> {
  readonly #decoder: RawEventDecoder;
  #events: RawEvent[] = [];
  #skipped: number[] = [];
  bytes = 0;
  constructor(prefix: string, timeHeader: boolean) {
    this.#decoder = new RawEventDecoder(prefix.length + 1, timeHeader);
  }
  get count(): number {
    return this.#events.length;
  }
  add(m: JsMsg, _seq: number, timestampNanos: number): void {
    const ev = this.#decoder.decode(m, timestampNanos);
    this.#events.push(ev);
    this.bytes += ev.data.length;
  }
  skip(seq: number): void {
    this.#skipped.push(seq);
  }
  take(pending: number): LogBatch {
    const events = this.#events;
    const lastSeq = events[events.length - 1]!.seq;
    const batch: LogBatch = { events, bytes: this.bytes, lastSeq, pending };
    const { mine, rest } = splitSkipped(this.#skipped, lastSeq);
    if (mine) batch.skipped = mine;
    this.#skipped = rest;
    this.#events = [];
    this.bytes = 0;
    return batch;
  }
}

/** Collects raw bytes into one transferable buffer per batch. */
export class PackedCollector implements Collector<PackedBatch> {
  #skipped: number[] = [];
  constructor(readonly packer: BatchPacker) {
    packer.reset();
  }
  skip(seq: number): void {
    this.#skipped.push(seq);
  }
  get count(): number {
    return this.packer.count;
  }
  get bytes(): number {
    return this.packer.bytes;
  }
  add(m: JsMsg, seq: number, timestampNanos: number): void {
    this.packer.add(m, seq, timestampNanos);
  }
  take(pending: number): PackedBatch {
    const batch = this.packer.take(pending);
    const { mine, rest } = splitSkipped(this.#skipped, batch.lastSeq);
    if (mine) batch.skipped = mine;
    this.#skipped = rest;
    return batch;
  }
}
