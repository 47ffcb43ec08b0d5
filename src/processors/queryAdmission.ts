import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { KappaError } from "../errors.js";
import { targetVersion, type ProcessorRecord, type RemoteFault, type RemoteQueryRequest } from "../views/index.js";
import type { VersionRunner } from "./runner.js";
import type { PeerCheckpoints } from "./peerCheckpoints.js";

/** How long a replica below the bound waits to reach it before it lets another replica answer. */
export const BOUND_PATIENCE_MS = 250;
/** A replica below the bound whose checkpoint did not move for this long is not about to reach it. */
const STALLED_MS = 50;

/** A refusal with whose fault it is, so the client knows whether another replica may answer. */
export class RefusedError extends KappaError {
  constructor(code: string, message: string, readonly fault: RemoteFault, opts: { hint?: string; cause?: unknown } = {}) {
    super(code, message, opts);
    this.name = "RefusedError";
  }
}

/** What a query may be answered from on this replica. */
export interface Admitted {
  rec: ProcessorRecord;
  version: number;
  runner: VersionRunner;
}

/** What admission reads from its worker. */
export interface AdmissionDeps {
  nc: NatsConnection;
  worker: string;
  records: (name: string) => ProcessorRecord | undefined;
  runners: Map<string, VersionRunner>;
  /** What the other replicas reported (the default bound); absent: no default bound. */
  peers?: PeerCheckpoints;
}

/** An error that depends on this replica's copy of the catalog (an unknown or retired version, no live one yet). */
export class CatalogViewError extends KappaError {
  constructor(readonly inner: KappaError) {
    super(inner.code, inner.message, inner.hint ? { hint: inner.hint, cause: inner } : { cause: inner });
    this.name = "CatalogViewError";
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Decides whether this replica answers a remote query: it must run the version, and be fresh enough for the
 * request's bound — the default (what the most advanced replica reported), a number of events behind the
 * stream's head, or "any" — and not behind what the caller has already seen of that version (monotonic
 * reads). Each check refuses with the replica's fault, so the client asks another replica. Checks run in
 * order in `admit`; a check for the replica's health slots in beside the bound.
 */
export class QueryAdmission {
  #jsm: JetStreamManager | undefined;

  constructor(private readonly deps: AdmissionDeps) {}

  /** The record, version and runner a query reads, or a RefusedError / CatalogViewError. */
  async admit(processor: string, req: RemoteQueryRequest, deadline: number): Promise<Admitted> {
    const { worker } = this.deps;
    const rec = this.deps.records(processor);
    if (!rec) throw new RefusedError("NOT_HELD", `${worker} does not hold ${processor}`, "replica");
    let version: number;
    try {
      version = targetVersion(rec, req.version);
    } catch (err) {
      throw err instanceof KappaError ? new CatalogViewError(err) : err;
    }
    const runner = this.deps.runners.get(`${processor}/${version}`);
    if (!runner) throw new RefusedError("NOT_HELD", `${worker} does not run ${processor} v${version}`, "replica");
    await this.#fresh(runner, req, deadline);
    return { rec, version, runner };
  }

  /** The staleness bound and monotonic reads. */
  async #fresh(runner: VersionRunner, req: RemoteQueryRequest, deadline: number): Promise<void> {
    // Anything but a number of events or "any" (a client of another version, a typo on the wire) gets the default.
    const bound = req.maxStaleness === "any" || (typeof req.maxStaleness === "number" && req.maxStaleness >= 0) ? req.maxStaleness : undefined;
    if (typeof bound === "number") await this.#headBound(runner, bound);
    const seen = Number(req.seen?.[String(runner.version)] ?? 0);
    const peers = bound === undefined ? (this.deps.peers?.floor(runner.name, runner.version) ?? 0) : 0;
    const floor = Math.max(Number.isFinite(seen) ? seen : 0, peers);
    if (runner.checkpoint >= floor) return;
    // A healthy replica is a few milliseconds behind the freshest one: give it that while it moves, not more.
    const until = Math.min(deadline, Date.now() + BOUND_PATIENCE_MS);
    let at = runner.checkpoint;
    let movedAt = Date.now();
    while (runner.checkpoint < floor && Date.now() < until && Date.now() - movedAt < STALLED_MS) {
      await sleep(5);
      if (runner.checkpoint !== at) [at, movedAt] = [runner.checkpoint, Date.now()];
    }
    if (runner.checkpoint >= floor) return;
    const why = floor === seen ? "an answer the caller has already seen (monotonic reads)" : "what another replica reported applying (the default bound)";
    throw new RefusedError("STALE", `${this.deps.worker} is at seq ${runner.checkpoint} on ${runner.name} v${runner.version}, behind seq ${floor}, ${why}`, "replica", {
      hint: "another replica answers when one is fresh enough; --max-staleness any accepts a lagging one (monotonic reads still hold)",
    });
  }

  /** `--max-staleness N`: behind the input stream's head as the stream reports it now, not as the last batch said. */
  async #headBound(runner: VersionRunner, maxStaleness: number): Promise<void> {
    this.#jsm ??= await jetstreamManager(this.deps.nc);
    const head = (await this.#jsm.streams.info(runner.inputStream)).state.last_seq;
    const lag = Math.max(0, Math.min(head, runner.record.untilSeq ?? head) - runner.checkpoint);
    if (lag > maxStaleness) {
      throw new RefusedError("STALE", `${this.deps.worker} is ${lag} events behind on ${runner.name} v${runner.version} (more than --max-staleness ${maxStaleness})`, "replica", {
        hint: "another replica answers when one is within the bound; raise --max-staleness, or wait for the replicas to catch up (`kappa status`)",
      });
    }
  }
}
