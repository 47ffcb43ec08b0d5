import type { FastifyReply } from "fastify";
import { UnavailableError } from "../../errors.js";

/** Bytes that may wait behind the event being sent; a client that lets more pile up does not read, and is cut off. */
const MAX_QUEUED = 1 << 20;
/**
 * An event goes to the socket in pieces of this size, the next only once the socket took the last
 * ('drain'): so the response never buffers more than one piece beyond its high-water mark, also for a
 * result event of 16 MiB, and a client that stops reading holds up only what waits in the queue.
 */
const PIECE = 64 * 1024;

/** One Server-Sent Events response: named events with JSON data, heartbeat comments, cleanup on disconnect. */
export class SseStream {
  readonly #reply: FastifyReply;
  readonly #cleanups: (() => void)[] = [];
  readonly #heartbeat: NodeJS.Timeout;
  /** Encoded events not yet handed to the socket whole; the first is being sent, from #offset. */
  readonly #queue: Buffer[] = [];
  #offset = 0;
  /** Bytes of the events behind the first. */
  #behind = 0;
  #waiting = false;
  #closed = false;

  constructor(reply: FastifyReply, heartbeatMs: number, private readonly hub: SseHub) {
    this.#reply = reply;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.write("retry: 1000\n\n");
    res.on("close", () => this.close());
    res.on("drain", () => {
      this.#waiting = false;
      this.#pump();
    });
    this.#heartbeat = setInterval(() => this.comment("heartbeat"), heartbeatMs);
    hub.add(this);
  }

  /** True once the client went away or the server closed the stream. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes waiting for this client: in the response's buffer, and queued behind it. */
  get pending(): { buffered: number; queued: number } {
    return { buffered: this.#reply.raw.writableLength, queued: (this.#queue[0]?.length ?? 0) - this.#offset + this.#behind };
  }

  /** Sends `event: <name>` with the JSON of `data`; false when the stream is closed. */
  send(event: string, data: unknown): boolean {
    return this.#write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Sends a comment line (ignored by clients, keeps proxies from timing out). */
  comment(text: string): boolean {
    return this.#write(`: ${text}\n\n`);
  }

  #write(chunk: string): boolean {
    if (this.#closed) return false;
    const bytes = Buffer.from(chunk);
    if (this.#queue.length > 0) {
      // Counted with this write, before it is queued: a client that does not read is cut off here.
      if (this.#behind + bytes.length > MAX_QUEUED) {
        this.close();
        return false;
      }
      this.#behind += bytes.length;
    }
    this.#queue.push(bytes);
    this.#pump();
    return !this.#closed;
  }

  /** Hands queued bytes to the socket a piece at a time, until it asks to wait for 'drain'. */
  #pump(): void {
    const res = this.#reply.raw;
    while (!this.#closed && !this.#waiting && this.#queue.length > 0) {
      const head = this.#queue[0]!;
      const piece = head.subarray(this.#offset, this.#offset + PIECE);
      this.#offset += piece.length;
      if (this.#offset >= head.length) {
        this.#queue.shift();
        this.#offset = 0;
        this.#behind -= this.#queue[0]?.length ?? 0;
      }
      if (!res.write(piece)) this.#waiting = true;
      this.hub.noteBuffered(res.writableLength);
    }
  }

  /** Runs `fn` when the stream closes, whoever closes it. */
  onClose(fn: () => void): void {
    if (this.#closed) fn();
    else this.#cleanups.push(fn);
  }

  /** Ends the response and runs the cleanups once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    clearInterval(this.#heartbeat);
    this.hub.delete(this);
    for (const fn of this.#cleanups.splice(0)) {
      try {
        fn();
      } catch {
        // a cleanup must not stop the others
      }
    }
    if (!this.#reply.raw.writableEnded) this.#reply.raw.end();
  }
}

/** The open event streams of one server (change streams and the status page's), under one cap; closing the server ends them. */
export class SseHub {
  readonly #streams = new Set<SseStream>();
  #peak = 0;

  /** @param max how many streams may be open at once, of every kind; beyond it `open` refuses with TOO_MANY_STREAMS (503). */
  constructor(readonly heartbeatMs: number, readonly max: number) {}

  /** Throws TOO_MANY_STREAMS when no stream may open now; call it before setting anything up for one. */
  assertRoom(): void {
    if (this.#streams.size >= this.max) {
      throw new UnavailableError("TOO_MANY_STREAMS", `this server already has ${this.#streams.size} event streams open (the cap)`, {
        hint: "retry later, close streams (change streams and status pages) you do not need, or raise `kappa serve --max-event-streams`",
      });
    }
  }

  /** Starts an event stream on a reply (the reply is hijacked from fastify), or refuses beyond the cap. */
  open(reply: FastifyReply): SseStream {
    this.assertRoom();
    return new SseStream(reply, this.heartbeatMs, this);
  }

  add(s: SseStream): void {
    this.#streams.add(s);
  }

  delete(s: SseStream): void {
    this.#streams.delete(s);
  }

  /** How many clients are connected. */
  get size(): number {
    return this.#streams.size;
  }

  /** Records how many bytes one stream's response buffer holds after a write, for the peak. */
  noteBuffered(bytes: number): void {
    if (bytes > this.#peak) this.#peak = bytes;
  }

  /** Bytes waiting for clients over every stream (in the responses' buffers, and queued behind them), and the most one response's buffer has held since the server started. */
  pending(): { buffered: number; queued: number; peakBuffered: number } {
    let buffered = 0;
    let queued = 0;
    for (const s of this.#streams) {
      const p = s.pending;
      buffered += p.buffered;
      queued += p.queued;
    }
    return { buffered, queued, peakBuffered: this.#peak };
  }

  /** Ends every stream. */
  closeAll(): void {
    for (const s of [...this.#streams]) s.close();
  }
}
