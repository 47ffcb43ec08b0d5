import { SynopsisStateError } from "./errors.js";

/**
 * Little-endian binary layout shared by every synopsis: a magic byte naming the kind, a format
 * version, then fields. Fixed endianness keeps serialized state identical on every machine.
 */
export const FORMAT_VERSION = 1;

/** Appends fields into a growing buffer. */
export class ByteWriter {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;

  constructor(magic: number, capacity = 64) {
    this.#buf = new Uint8Array(Math.max(capacity, 16));
    this.#view = new DataView(this.#buf.buffer);
    this.u8(magic);
    this.u8(FORMAT_VERSION);
  }

  #reserve(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#pos + n));
    next.set(this.#buf);
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.#reserve(1);
    this.#view.setUint8(this.#pos, v);
    this.#pos += 1;
    return this;
  }

  u32(v: number): this {
    this.#reserve(4);
    this.#view.setUint32(this.#pos, v, true);
    this.#pos += 4;
    return this;
  }

  f64(v: number): this {
    this.#reserve(8);
    this.#view.setFloat64(this.#pos, v, true);
    this.#pos += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#reserve(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
    return this;
  }

  /** UTF-8 text with a u32 length prefix. */
  text(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.u32(b.length).bytes(b);
  }

  /** The written bytes (a copy sized exactly). */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#pos);
  }
}

/** Reads fields back, checking the magic byte and version and every length. */
export class ByteReader {
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  readonly #kind: string;
  #pos = 0;

  constructor(bytes: Uint8Array, magic: number, kind: string) {
    this.#buf = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#kind = kind;
    const m = this.u8();
    const v = this.u8();
    if (m !== magic) throw new SynopsisStateError(`stored state is not a ${kind} (magic byte ${m})`);
    if (v !== FORMAT_VERSION) throw new SynopsisStateError(`stored ${kind} has format version ${v}; this code reads ${FORMAT_VERSION}`);
  }

  #need(n: number): void {
    if (this.#pos + n > this.#buf.length) throw new SynopsisStateError(`stored ${this.#kind} is truncated`);
  }

  u8(): number {
    this.#need(1);
    return this.#view.getUint8(this.#pos++);
  }

  u32(): number {
    this.#need(4);
    const v = this.#view.getUint32(this.#pos, true);
    this.#pos += 4;
    return v;
  }

  f64(): number {
    this.#need(8);
    const v = this.#view.getFloat64(this.#pos, true);
    this.#pos += 8;
    return v;
  }

  bytes(n: number): Uint8Array {
    this.#need(n);
    const b = new Uint8Array(n); // a copy with its own buffer (Buffer#slice would share the pool)
    b.set(this.#buf.subarray(this.#pos, this.#pos + n));
    this.#pos += n;
    return b;
  }

  text(): string {
    return new TextDecoder().decode(this.bytes(this.u32()));
  }

  /** Throws unless every byte was read: trailing bytes mean a different layout. */
  end(): void {
    if (this.#pos !== this.#buf.length) throw new SynopsisStateError(`stored ${this.#kind} has ${this.#buf.length - this.#pos} unexpected trailing bytes`);
  }
}
