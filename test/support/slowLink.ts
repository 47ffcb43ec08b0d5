import { createServer, connect, type Server, type Socket } from "node:net";

/**
 * A TCP relay in front of a real nats-server that can hold every byte from the server back for a while:
 * a slow network or a busy server, as the client sees it. Nothing is changed or dropped, only delayed.
 */
export class SlowLink {
  /** Delay added to everything the server sends (ms); 0 relays at once. */
  delayMs = 0;
  /** Delay added to everything the client sends (ms): the server sees each request this much later. */
  delayUpMs = 0;
  readonly #sockets = new Set<Socket>();

  private constructor(private readonly server: Server, readonly url: string) {}

  static async start(target: { host: string; port: number }): Promise<SlowLink> {
    let link: SlowLink | undefined;
    const server = createServer((client) => {
      const upstream = connect(target.port, target.host);
      link!.#sockets.add(client).add(upstream);
      client.on("data", (chunk: Buffer) => {
        const d = link!.delayUpMs;
        if (d === 0) upstream.write(chunk);
        else setTimeout(() => upstream.writable && upstream.write(chunk), d);
      });
      upstream.on("data", (chunk: Buffer) => {
        const d = link!.delayMs;
        if (d === 0) client.write(chunk);
        else setTimeout(() => client.writable && client.write(chunk), d);
      });
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("error", end).on("close", end);
      upstream.on("error", end).on("close", end);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    link = new SlowLink(server, `nats://127.0.0.1:${port}`);
    return link;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
