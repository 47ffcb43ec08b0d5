import { messageOf } from "../errors.js";
import type { Catalog, Follower, ProcessorRecord } from "../views/index.js";

/**
 * Hands a worker every processor record once per catalog revision, from every source that can deliver
 * one: a first full read, the watch (which restarts itself when it ends), a full re-read every
 * `resyncMs` in case the watch stalls without ending (its consumer dropped), and a fresh watch after a
 * reconnect. Those overlap, so a revision already taken, or an older one, is dropped.
 */
export class CatalogFeed {
  readonly #revisions = new Map<string, number>();
  #watch: Follower | undefined;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #failing = false;
  #stopped = false;

  constructor(
    private readonly catalog: Catalog,
    private readonly take: (record: ProcessorRecord, revision: number) => void,
    private readonly log: (line: string) => void,
    private readonly resyncMs = 5000,
  ) {}

  /** Reads the whole catalog once; throws when it cannot (a worker that cannot read the catalog does not start). */
  async read(): Promise<void> {
    for (const e of await this.catalog.entries()) this.#offer(e.record, e.revision);
  }

  /** Starts the watch and the periodic re-read. */
  follow(): void {
    this.#watch = this.catalog.watch((r, rev) => this.#offer(r, rev), this.log);
    this.#timer = setInterval(() => void this.resync(), this.resyncMs);
  }

  /** After a reconnect: a new watch at once, and a full read. */
  restart(): void {
    this.#watch?.restart();
    void this.resync();
  }

  /** The revision taken last for a processor. */
  revision(name: string): number | undefined {
    return this.#revisions.get(name);
  }

  /** Reads the whole catalog again; failures are logged once per outage. */
  async resync(): Promise<void> {
    if (this.#stopped || this.#busy) return;
    this.#busy = true;
    try {
      await this.read();
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) this.log(`catalog not readable (${messageOf(err)}); trying again quietly`);
      this.#failing = true;
    } finally {
      this.#busy = false;
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#watch?.stop();
    clearInterval(this.#timer);
  }

  #offer(record: ProcessorRecord, revision: number): void {
    if (this.#stopped || revision <= (this.#revisions.get(record.name) ?? 0)) return;
    this.#revisions.set(record.name, revision);
    this.take(record, revision);
  }
}
