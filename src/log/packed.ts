import type { JsMsg } from "@nats-io/jetstream";
import { SCHEMA_HEADER, TIME_HEADER, type RawEvent } from "./rawEvent.js";
import { headerAt, headerName } from "./headerScan.js";

/**
 * A batch of events as raw bytes in one transferable buffer: the thread that reads NATS only copies each
 * message's header and payload bytes in; the thread that applies decodes headers and parses JSON.
 * Record layout: seq f64 · stored-at ms f64 · type index u32 · header length i32 (−1: none) · length u32 · bytes.
 */
export interface PackedBatch {
  buf: ArrayBuffer;
  /** Bytes of `buf` in use. */
  end: number;
  count: number;
  lastSeq: number;
  /** When the log stored the last event (epoch ms, the server's clock). */
  lastStoredAt: number;
  /** Matching events the log still held after the last one. */
  pending: number;
  /** Types first seen in this batch: they extend the packer's type table at index `typeBase`. */
  newTypes: string[];
  typeBase: number;
  /** Sequences consumed without an event (writer fences): no gap. */
  skipped?: number[];
}

const RECORD = 28;
const MIN_CAPACITY = 4096;

interface InnerMsg {
  _rdata?: Uint8Array;
  _msg?: { hdr: number };
}

/** The raw header+payload bytes of a message and the header length, without decoding the headers. */
function rawBytes(m: JsMsg): { raw: Uint8Array; hdr: number } {
  // nats-core keeps both on its Msg (internal fields); the public API is the fallback.
  const inner = (m as unknown as { msg?: InnerMsg }).msg;
  if (inner?._rdata && inner._msg) return { raw: inner._rdata, hdr: inner._msg.hdr };
  const h = m.headers as unknown as { encode?: () => Uint8Array } | undefined;
  if (!h?.encode) return { raw: m.data, hdr: -1 };
  const head = h.encode();
  const raw = new Uint8Array(head.length + m.data.length);
  raw.set(head);
  raw.set(m.data, head.length);
  return { raw, hdr: head.length };
}

/** Packs messages into one buffer per batch; the type table lives as long as the packer, so indices stay stable across batches. */
export class BatchPacker {
  readonly #types = new Map<string, number>();
  #sentTypes = 0;
  #typeList: string[] = [];
  #buf: ArrayBuffer;
  #u8: Uint8Array;
  #dv: DataView;
  #end = 0;
  #count = 0;
  #lastSeq = 0;
  #lastStoredAt = 0;
  /** The next batch starts at about the size of the last one, so trickles stay small and replays grow once. */
  #capacity = MIN_CAPACITY;

  /** `types`: a table to start from (a reader on another thread packs with the table of the version's own packer). */
  constructor(private readonly prefixLength: number, types: readonly string[] = []) {
    for (const t of types) this.#learn(t);
    this.#buf = new ArrayBuffer(this.#capacity);
    this.#u8 = new Uint8Array(this.#buf);
    this.#dv = new DataView(this.#buf);
  }

  get count(): number {
    return this.#count;
  }

  /** Payload bytes held (headers included). */
  get bytes(): number {
    return this.#end - this.#count * RECORD;
  }

  /** Types in the table by type (the subject map above fills as subjects are met). */
  readonly #byType = new Map<string, number>();

  #learn(type: string): number {
    const t = this.#typeList.length;
    this.#byType.set(type, t);
    this.#typeList.push(type);
    return t;
  }

  /** The type table so far (to seed a packer on another thread). */
  get types(): readonly string[] {
    return this.#typeList;
  }

  /** Takes in the types a batch packed elsewhere (from this packer's table) added, so indices stay one table. */
  absorb(b: Pick<PackedBatch, "typeBase" | "newTypes">): void {
    for (let i = 0; i < b.newTypes.length; i++) if (b.typeBase + i === this.#typeList.length) this.#learn(b.newTypes[i]!);
  }

  /** Adds one message; `seq` and `timestampNanos` come from its delivery info. */
  add(m: JsMsg, seq: number, timestampNanos: number): void {
    // Keyed by the whole subject: the client has decoded it already, and no slice per message.
    const subject = m.subject;
    let t = this.#types.get(subject);
    if (t === undefined) {
      const type = subject.slice(this.prefixLength);
      t = this.#byType.get(type) ?? this.#learn(type);
      this.#types.set(subject, t);
    }
    const { raw, hdr } = rawBytes(m);
    const need = this.#end + RECORD + raw.length;
    if (need > this.#buf.byteLength) this.#grow(need);
    const dv = this.#dv;
    const at = this.#end;
    dv.setFloat64(at, seq, true);
    const storedAt = Math.floor(timestampNanos / 1e6);
    dv.setFloat64(at + 8, storedAt, true);
    dv.setUint32(at + 16, t, true);
    dv.setInt32(at + 20, hdr, true);
    dv.setUint32(at + 24, raw.length, true);
    this.#u8.set(raw, at + RECORD);
    this.#end = need;
    this.#count++;
    this.#lastSeq = seq;
    this.#lastStoredAt = storedAt;
  }

  #grow(need: number): void {
    let cap = this.#buf.byteLength * 2;
    while (cap < need) cap *= 2;
    const next = new ArrayBuffer(cap);
    new Uint8Array(next).set(this.#u8.subarray(0, this.#end));
    this.#buf = next;
    this.#u8 = new Uint8Array(next);
    this.#dv = new DataView(next);
  }

  /** Hands over what was packed (the buffer is the caller's now) and starts a new batch. */
  take(pending: number): PackedBatch {
    const typeBase = this.#sentTypes;
    const batch: PackedBatch = {
      buf: this.#buf,
      end: this.#end,
      count: this.#count,
      lastSeq: this.#lastSeq,
      lastStoredAt: this.#lastStoredAt,
      pending,
      newTypes: this.#typeList.slice(typeBase),
      typeBase,
    };
    this.#sentTypes = this.#typeList.length;
    this.#capacity = Math.max(MIN_CAPACITY, this.#end);
    this.#buf = new ArrayBuffer(this.#capacity);
    this.#u8 = new Uint8Array(this.#buf);
    this.#dv = new DataView(this.#buf);
    this.#end = 0;
    this.#count = 0;
    return batch;
  }

  /**
   * Drops a partly packed batch (a new subscription starts from the checkpoint: mixing the two would
   * repeat events). With `resendTypes` the next batch carries the whole type table (a fresh apply thread).
   */
  reset(resendTypes = false): void {
    this.#end = 0;
    this.#count = 0;
    if (resendTypes) this.#sentTypes = 0;
  }

  /** The event type at a table index (to name the event a stuck handler is on). */
  typeAt(index: number): string | undefined {
    return this.#typeList[index];
  }
}

const utf8 = new TextDecoder();
const SCHEMA_NAME = headerName(SCHEMA_HEADER);

/** The value of a header in a raw NATS header block ("NATS/1.0\r\nKey: value\r\n…"); names compare case-insensitively. */
function headerValue(block: string, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const line of block.split("\r\n")) {
    const c = line.indexOf(":");
    if (c > 0 && line.slice(0, c).trim().toLowerCase() === wanted) return line.slice(c + 1).trim();
  }
  return undefined;
}

/** A RawEvent over a slice of a packed buffer; headers are decoded only when asked for. */
class PackedEvent implements RawEvent {
  #id: string | undefined;
  constructor(readonly seq: number, readonly type: string, readonly typeIndex: number, readonly time: string, private readonly u8: Uint8Array, private readonly body: number, private readonly hdr: number, private readonly len: number) {}
  get data(): Uint8Array {
    const h = Math.max(0, this.hdr);
    return this.u8.subarray(this.body + h, this.body + this.len);
  }
  get id(): string {
    this.#id ??= this.hdr > 0 ? headerValue(utf8.decode(this.u8.subarray(this.body, this.body + this.hdr)), "Nats-Msg-Id") ?? "" : "";
    return this.#id;
  }
  /** Read by upcasters and by the build's schema check (for handled types), straight from the bytes. */
  get schemaHeader(): string | undefined {
    return this.hdr > 0 ? headerAt(this.u8, this.body, this.body + this.hdr, SCHEMA_NAME) || undefined : undefined;
  }
  /** The raw header block as a string ("" when the message had none). */
  headerBlock(): string {
    return this.hdr > 0 ? utf8.decode(this.u8.subarray(this.body, this.body + this.hdr)) : "";
  }
}

/** The apply thread's half: turns packed batches back into RawEvents, keeping the packer's type table. */
export class BatchUnpacker {
  readonly #types: string[] = [];
  #lastMs = -1;
  #lastIso = "";

  /** @param timeHeader honour Kappa-Time headers (streams of derived events) */
  constructor(private readonly timeHeader: boolean) {}

  unpack(b: PackedBatch): (RawEvent & { typeIndex: number })[] {
    if (b.typeBase === 0) this.#types.length = 0;
    for (let i = 0; i < b.newTypes.length; i++) this.#types[b.typeBase + i] = b.newTypes[i]!;
    const u8 = new Uint8Array(b.buf, 0, b.end);
    const dv = new DataView(b.buf, 0, b.end);
    const out: PackedEvent[] = new Array(b.count);
    let p = 0;
    for (let i = 0; i < b.count; i++) {
      const seq = dv.getFloat64(p, true);
      const ms = dv.getFloat64(p + 8, true);
      const t = dv.getUint32(p + 16, true);
      const hdr = dv.getInt32(p + 20, true);
      const len = dv.getUint32(p + 24, true);
      const body = p + RECORD;
      let time = this.#iso(ms);
      if (this.timeHeader && hdr > 0) {
        const own = headerValue(utf8.decode(u8.subarray(body, body + hdr)), TIME_HEADER);
        if (own) time = own;
      }
      out[i] = new PackedEvent(seq, this.#types[t] ?? "", t, time, u8, body, hdr, len);
      p = body + len;
    }
    return out;
  }

  /** The type at a table index. */
  typeAt(index: number): string | undefined {
    return this.#types[index];
  }

  #iso(ms: number): string {
    if (ms !== this.#lastMs) {
      this.#lastMs = ms;
      this.#lastIso = new Date(ms).toISOString();
    }
    return this.#lastIso;
  }
}
