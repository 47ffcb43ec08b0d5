import type { NatsConnection } from "@nats-io/nats-core";
import { remoteQuery, type QueryRequest, type RemoteAnswer } from "../../views/index.js";

/**
 * `kappa serve --remote`: view queries go over NATS to the workers, with the server's staleness bound
 * (`--max-staleness`; absent: the workers' default bound), and monotonic reads for every client of this
 * server: each answer is at or past the highest seq this server has returned for that version, so a reader
 * making one request after another never sees `seq` go backwards, whichever replica answers.
 */
export class RemoteReads {
  /** processor → version → the highest seq returned. */
  readonly #seen = new Map<string, Map<number, number>>();

  constructor(
    private readonly connection: () => Promise<NatsConnection>,
    private readonly stream: string,
    private readonly maxStaleness?: number | "any",
  ) {}

  /** Runs one query; its timeout counts from when the request arrived. */
  async query(q: QueryRequest): Promise<RemoteAnswer> {
    const { processor, arrivedAt: at, ...rest } = q;
    const left = (rest.timeoutMs ?? 5000) - (Date.now() - (at ?? Date.now()));
    const seen = this.#seen.get(processor);
    const a = await remoteQuery(await this.connection(), this.stream, processor, {
      ...rest,
      timeoutMs: Math.max(1, left),
      ...(this.maxStaleness !== undefined ? { maxStaleness: this.maxStaleness } : {}),
      ...(seen ? { seen: Object.fromEntries(seen) } : {}),
    });
    this.#saw(processor, a.version, a.seq);
    return a;
  }

  #saw(processor: string, version: number, seq: number): void {
    let m = this.#seen.get(processor);
    if (!m) this.#seen.set(processor, (m = new Map()));
    if (seq > (m.get(version) ?? -1)) m.set(version, seq);
  }
}
