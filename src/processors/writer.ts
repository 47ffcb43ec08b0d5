import type { NatsConnection } from "@nats-io/nats-core";
import { messageOf } from "../errors.js";
import { Catalog, claimWriter, markCaughtUp, markFailed, type VersionFailure, type WriterFence, type SchemaNote } from "../views/index.js";
import type { LeaseTable } from "./lease.js";
import { installFence, lastFence, outputExists, publishedUpTo, type OutboxPosition, type OutputFence } from "./fence.js";
import type { OutboxGate } from "./outbox.js";
import type { OutputSpec } from "./derived.js";

/** What the writer role sees of its version's runner. */
export interface WriterSubject {
  readonly caughtUp: boolean;
  /** Schema versions the build met that the code cannot upcast: recorded with the catch-up or failure. */
  readonly schemaNotes?: SchemaNote[];
  readonly outboxPending: number;
  kickOutbox(): void;
}

/** How a version's writer role reaches the world. */
export interface WriterDeps {
  nc: NatsConnection;
  catalog: Catalog;
  leases: LeaseTable;
  output: OutputSpec;
  log: (line: string) => void;
}

/** How often a non-writer re-reads what the writer has published, to prune its own outbox. */
const PRUNE_READ_MS = 1000;

/**
 * The once-per-version effects of one version on this worker: it takes the version's lease when free, and
 * while it holds it (by its own clock) it alone records catalog transitions and publishes the outbox, each
 * carrying the lease's fencing token. A replica that is not the writer remembers its transitions and does
 * them if it becomes the writer; emits are deterministic, so its outbox holds what the writer publishes.
 */
export class VersionWriter implements OutboxGate {
  readonly key: string;
  #fence: WriterFence | undefined;
  #output: OutputFence | undefined;
  /** The checkpoint the runner caught up at, once it has. */
  #caughtUpAt: number | undefined;
  #failure: VersionFailure | undefined;
  #pruneAt = 0;
  #pruneUpTo: OutboxPosition | null = null;
  #busy = false;
  #closed = false;
  subject: WriterSubject | undefined;

  constructor(readonly name: string, readonly version: number, private readonly deps: WriterDeps) {
    this.key = `${name}.v${version}`;
  }

  /** Our fencing token while we may act as the writer (our clock says the lease holds), else undefined. */
  get token(): number | undefined {
    return this.#fence && this.deps.leases.held(this.key) ? this.#fence.token : undefined;
  }

  /** True while this worker is the version's writer. */
  get isWriter(): boolean {
    return this.token !== undefined;
  }

  /** Keeps the lease: renews it when held, steps down when lost, takes it when free. Called a few times per TTL. */
  async tick(): Promise<void> {
    if (this.#busy || this.#closed) return;
    this.#busy = true;
    try {
      if (this.#fence) {
        if (!(await this.deps.leases.renew(this.key))) this.#stepDown("lease lost");
      } else {
        const lease = await this.deps.leases.acquire(this.key);
        if (lease) await this.#takeOver({ worker: this.deps.leases.worker, token: lease.token });
      }
    } catch (err) {
      this.deps.log(`${this.name}/${this.version}: lease: ${messageOf(err)}`);
    } finally {
      this.#busy = false;
    }
  }

  async #takeOver(fence: WriterFence): Promise<void> {
    try {
      await claimWriter(this.deps.catalog, this.name, this.version, fence);
      // Fence the output now, not at the first publish: from here on an older writer's buffered emits are refused.
      const s = this.subject;
      if ((s && s.outboxPending > 0) || (await outputExists(this.deps.nc, this.deps.output))) {
        this.#output = await installFence(this.deps.nc, this.deps.output, fence);
      }
    } catch (err) {
      this.deps.leases.drop(this.key);
      this.#output = undefined;
      if ((err as { code?: string }).code !== "FENCED") throw err;
      this.deps.log(`${this.name}/${this.version}: ${messageOf(err)}`);
      return;
    }
    this.#fence = fence;
    this.deps.log(`${this.name}/${this.version}: writer (token ${fence.token})`);
    if (this.#failure) await this.#record("failure", () => markFailed(this.deps.catalog, this.name, this.version, this.#failure!, fence, this.subject?.schemaNotes));
    else if (this.#caughtUpAt !== undefined) await this.#record("catch-up", () => markCaughtUp(this.deps.catalog, this.name, this.version, fence, { checkpoint: this.#caughtUpAt, notes: this.subject?.schemaNotes }));
    this.subject?.kickOutbox();
  }

  #stepDown(why: string): void {
    if (!this.#fence) return;
    this.deps.log(`${this.name}/${this.version}: no longer the writer (${why}) — carrying on as a replica`);
    this.deps.leases.drop(this.key);
    this.#fence = undefined;
    this.#output = undefined;
  }

  /** The runner caught up at `checkpoint`: the writer records it (and the first version goes live); a replica remembers it. */
  caughtUp(checkpoint: number): void {
    this.#caughtUpAt = checkpoint;
    const fence = this.#fence;
    if (fence && this.token !== undefined) void this.#record("catch-up", () => markCaughtUp(this.deps.catalog, this.name, this.version, fence, { checkpoint, notes: this.subject?.schemaNotes }));
  }

  /** The runner failed: the writer records the failure; a replica remembers it. */
  failed(f: VersionFailure): void {
    this.#failure = f;
    const fence = this.#fence;
    if (fence && this.token !== undefined) void this.#record("failure", () => markFailed(this.deps.catalog, this.name, this.version, f, fence, this.subject?.schemaNotes));
  }

  /** A catalog write under our token, retried while we still hold the lease; a fenced refusal ends it. */
  async #record(what: string, write: () => Promise<unknown>): Promise<void> {
    for (let n = 0; !this.#closed; n++) {
      if (this.token === undefined) return;
      try {
        await write();
        return;
      } catch (err) {
        if ((err as { code?: string }).code === "FENCED") return this.#stepDown(messageOf(err));
        this.deps.log(`${this.name}/${this.version}: recording ${what}: ${messageOf(err)} — retrying`);
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** Math.min(n, 4))));
      }
    }
  }

  /** The outbox asks before each round: the writer publishes under its fence; a replica only prunes what is out. */
  async permit(): Promise<{ publish: boolean; publishedUpTo: OutboxPosition | null; headers?: Record<string, string> }> {
    const fence = this.#fence;
    if (fence && this.token !== undefined) {
      try {
        this.#output ??= await installFence(this.deps.nc, this.deps.output, fence);
        return { publish: true, publishedUpTo: this.#output.publishedUpTo, headers: this.#output.headers };
      } catch (err) {
        if ((err as { code?: string }).code === "FENCED") this.#stepDown(messageOf(err));
        else throw err;
      }
    } else if (fence) {
      this.#stepDown("our clock says the lease ran out");
    }
    if (Date.now() - this.#pruneAt > PRUNE_READ_MS) {
      this.#pruneUpTo = await publishedUpTo(this.deps.nc, this.deps.output).catch(() => this.#pruneUpTo);
      this.#pruneAt = Date.now();
    }
    return { publish: false, publishedUpTo: this.#pruneUpTo };
  }

  /** A publish was refused: step down if a newer writer's fence is in the output; otherwise the outbox just re-reads its position. */
  async rejected(err: unknown): Promise<void> {
    const fence = this.#fence;
    if (!fence) return;
    const last = await lastFence(this.deps.nc, this.deps.output);
    if (last && last.token !== fence.token) this.#stepDown(`a newer writer (token ${last.token}) fenced the output: ${messageOf(err)}`);
  }

  /** Stops acting; a clean stop gives the lease back so another replica takes over at once. */
  async close(): Promise<void> {
    this.#closed = true;
    const had = this.#fence !== undefined;
    this.#fence = undefined;
    this.#output = undefined;
    if (had) await this.deps.leases.release(this.key);
  }
}
