import type { FastifyReply } from "fastify";

/** Buffered bytes after which a client that does not read is cut off, so a slow reader cannot grow our memory. */
const MAX_BUFFERED = 1 << 20;

/** One Server-Sent Events response: named events with JSON data, heartbeat comments, cleanup on disconnect. */
export class SseStream {
  readonly #reply: FastifyReply;
  readonly #cleanups: (() => void)[] = [];
  readonly #heartbeat: NodeJS.Timeout;
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
    this.#heartbeat = setInterval(() => this.comment("heartbeat"), heartbeatMs);
    hub.add(this);
  }

  /** True once the client went away or the server closed the stream. */
  get closed(): boolean {
    return this.#closed;
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
    const res = this.#reply.raw;
    if (res.writableLength > MAX_BUFFERED) {
      this.close();
      return false;
    }
    res.write(chunk);
    return true;
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

/** The open event streams of one server, so closing the server ends them instead of waiting for clients. */
export class SseHub {
  readonly #streams = new Set<SseStream>();

  constructor(readonly heartbeatMs: number) {}

  /** Starts an event stream on a reply (the reply is hijacked from fastify). */
  open(reply: FastifyReply): SseStream {
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

  /** Ends every stream. */
  closeAll(): void {
    for (const s of [...this.#streams]) s.close();
  }
}
