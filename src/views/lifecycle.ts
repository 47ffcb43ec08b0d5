import { InputError, KappaError } from "../errors.js";
import { Catalog, CatalogConflictError, addHistory, newProcessorRecord, versionOf, type ProcessorRecord, type VersionRecord, type VersionFailure, type WriterFence, type SchemaNote } from "./catalog.js";

/** A writer acted with a fencing token older than the version's current writer's: it lost its lease and must stop. */
export class FencedError extends KappaError {
  constructor(message: string) {
    super("FENCED", message, { hint: "another worker took over as this version's writer; this one carries on as a replica" });
  }
}

/** Refuses a writer's change unless it carries the token of the version's current writer. */
function checkFence(name: string, v: VersionRecord, fence: WriterFence | undefined): void {
  if (fence && v.writer?.token !== fence.token) {
    throw new FencedError(`${name} v${v.version}: writer token ${fence.token} of ${fence.worker} is stale (current: ${v.writer ? `${v.writer.token} of ${v.writer.worker}` : "none"})`);
  }
}

/**
 * Records that `fence` now writes this version. Refuses when a newer token already claimed it, so of two
 * workers that both believed they held the lease only the later one can act on the catalog afterwards.
 */
export async function claimWriter(catalog: Catalog, name: string, version: number, fence: WriterFence): Promise<ProcessorRecord> {
  return catalog.mutate(name, (cur) => {
    if (!cur) throw new KappaError("CATALOG_MISSING", `processor ${name} vanished from the catalog`);
    const v = versionOf(cur, version);
    if (v.writer && v.writer.token > fence.token) throw new FencedError(`${name} v${version}: ${v.writer.worker} holds a newer writer token (${v.writer.token} > ${fence.token})`);
    if (v.writer?.token !== fence.token) v.writer = { ...fence, since: new Date().toISOString() };
    return cur;
  });
}

/** What a new version runs and where it starts. */
export type NewVersion = Pick<VersionRecord, "codeHash" | "codeKind" | "origin" | "from" | "startSeq" | "startTime" | "until" | "untilSeq" | "seed" | "subjects" | "replayOf" | "source" | "queries" | "schemaCheck"> & {
  /** Promote as soon as it has caught up. */
  promote?: boolean;
};

/** Result of registering: the new version, or the existing one that already runs this code from this offset. */
export interface Registered {
  record: ProcessorRecord;
  version: VersionRecord;
  unchanged: boolean;
}

const ACTIVE = new Set(["building", "caught-up", "live"]);

/** Registers a new version (deploy or replay). A deploy of code already running from the same offsets changes nothing (a replay too, with `reuse`). */
export async function registerVersion(catalog: Catalog, name: string, nv: NewVersion, action: "deploy" | "replay", opts: { reuse?: boolean } = {}): Promise<Registered> {
  let unchanged: VersionRecord | undefined;
  let created: VersionRecord | undefined;
  const record = await catalog.mutate(name, (cur) => {
    const rec = cur ?? newProcessorRecord(name);
    // `reuse`: a replay that an equal active version already answers (two `query --as-of` racing build one).
    unchanged = action === "deploy" || opts.reuse
      ? Object.values(rec.versions).find((v) => ACTIVE.has(v.state) && v.codeHash === nv.codeHash && v.from === nv.from && v.untilSeq === nv.untilSeq && sameSource(v.source, nv.source))
      : undefined;
    if (unchanged) return rec;
    const version = rec.nextVersion++;
    created = {
      version,
      codeHash: nv.codeHash,
      codeKind: nv.codeKind,
      ...(nv.origin ? { origin: nv.origin } : {}),
      from: nv.from,
      ...(nv.startSeq !== undefined ? { startSeq: nv.startSeq } : {}),
      ...(nv.startTime !== undefined ? { startTime: nv.startTime } : {}),
      ...(nv.untilSeq !== undefined ? { until: nv.until ?? String(nv.untilSeq), untilSeq: nv.untilSeq } : {}),
      ...(nv.seed ? { seed: nv.seed } : {}),
      subjects: nv.subjects,
      state: "building",
      createdAt: new Date().toISOString(),
      ...(nv.promote ? { promoteWhenCaughtUp: true, promoteAfter: rec.promotions ?? 0 } : {}),
      ...(nv.replayOf !== undefined ? { replayOf: nv.replayOf } : {}),
      ...(nv.source ? { source: nv.source } : {}),
      ...(nv.queries ? { queries: nv.queries } : {}),
      ...(nv.schemaCheck === false ? { schemaCheck: false as const } : {}),
    };
    rec.versions[String(version)] = created;
    addHistory(rec, { action, version, detail: `code ${nv.codeHash.slice(0, 12)} from ${nv.from}${nv.untilSeq !== undefined ? ` until ${nv.untilSeq}` : ""}` });
    return rec;
  });
  if (unchanged) return { record, version: unchanged, unchanged: true };
  return { record, version: created!, unchanged: false };
}

function sameSource(a?: { processor: string; version: number }, b?: { processor: string; version: number }): boolean {
  return a?.processor === b?.processor && a?.version === b?.version;
}

/** Makes `version` live. Refuses when the live pointer changed since `expectedLive` was read (two promotions racing: one wins). */
export async function promote(catalog: Catalog, name: string, version: number, opts: { expectedLive?: number | null; action?: "promote" | "rollback"; force?: boolean } = {}): Promise<ProcessorRecord> {
  return catalog.mutate(name, (cur) => {
    if (!cur) throw new InputError(`processor ${name} is not deployed`, { hint: "deploy it first with `kappa deploy <module>`" });
    if (opts.expectedLive !== undefined && cur.live !== opts.expectedLive) {
      throw new CatalogConflictError(`the live version of ${name} changed to ${cur.live ?? "none"} while promoting ${version}`, "check `kappa status` and promote again if still wanted");
    }
    const v = versionOf(cur, version);
    if (v.state === "live") throw new InputError(`${name} v${version} is already live`, { code: "ALREADY_LIVE" });
    if (v.state === "retired" || v.state === "failed" || v.error) {
      throw new InputError(`${name} v${version} is ${v.state} and cannot be made live`, { hint: "replay a new version with `kappa replay`" });
    }
    if (v.untilSeq !== undefined && !opts.force) throw frozenRefusal(name, version, v.untilSeq);
    applyPromotion(cur, version, opts.action ?? "promote");
    return cur;
  });
}

/** Serving the past is sometimes what an incident needs, but never by accident. */
function frozenRefusal(name: string, version: number, untilSeq: number, via?: "promote"): InputError {
  return new InputError(`${name} v${version} is frozen at seq ${untilSeq}: live, it would serve the past and never follow the log`, {
    hint: via
      ? `rollback does not put a frozen version live; \`kappa promote ${name} ${version} --force\` does if serving the past is what you want, or promote another version`
      : `query it with \`kappa query ${name} --version ${version}\`, or pass --force if serving the past is what you want`,
    code: "FROZEN_VERSION",
  });
}

/** Moves the live pointer inside a record (already checked); `counted` is false only for a first version going live by itself. */
function applyPromotion(rec: ProcessorRecord, version: number, action: "promote" | "rollback", counted = true): void {
  if (counted) rec.promotions = (rec.promotions ?? 0) + 1;
  const previous = rec.live;
  if (previous !== null) {
    const old = rec.versions[String(previous)];
    // A live version that failed keeps its error: demoted, it is failed, not a rollback target.
    if (old && old.state === "live") old.state = old.error ? "failed" : "caught-up";
    if (action === "promote") rec.previousLive.push(previous);
  }
  const v = versionOf(rec, version);
  v.state = "live";
  delete v.promoteWhenCaughtUp;
  rec.live = version;
  addHistory(rec, { action, version, previous });
}

/**
 * Makes the previous live version live again (it kept following the log). With `expectedLive`, a
 * compare-and-set like promote: refused when the live pointer moved since it was read, so two racing
 * rollbacks (or a rollback racing a promote) never both act.
 */
export async function rollback(catalog: Catalog, name: string, opts: { expectedLive?: number | null } = {}): Promise<ProcessorRecord> {
  return catalog.mutate(name, (cur) => {
    if (!cur) throw new InputError(`processor ${name} is not deployed`);
    if (opts.expectedLive !== undefined && cur.live !== opts.expectedLive) {
      throw new CatalogConflictError(`the live version of ${name} changed to ${cur.live === null ? "none" : `v${cur.live}`} while rolling back from ${opts.expectedLive === null ? "none" : `v${opts.expectedLive}`}`, "check `kappa status` and roll back again if still wanted");
    }
    while (cur.previousLive.length > 0) {
      const prev = cur.previousLive.pop()!;
      const v = cur.versions[String(prev)];
      if (v && !v.error && (v.state === "caught-up" || v.state === "building")) {
        // A frozen version once forced live is not put back by a rollback, which takes no --force.
        if (v.untilSeq !== undefined) throw frozenRefusal(name, prev, v.untilSeq, "promote");
        applyPromotion(cur, prev, "rollback");
        return cur;
      }
    }
    const others = Object.values(cur.versions).filter((v) => v.version !== cur.live && v.state === "caught-up" && !v.error).map((v) => v.version);
    throw new InputError(`${name} has no version to roll back to: ${cur.live !== null ? `no version that was live before v${cur.live} is still running` : "no version has been live yet"}`, {
      hint: others.length ? `promote another version explicitly: \`kappa promote ${name} ${others.at(-1)}\`` : `deploy a new version (\`kappa deploy <module>\`) and promote it`,
      code: "NO_ROLLBACK",
    });
  });
}

/** Retires a version that is not live; the worker stops it and deletes its file once no reader holds it. */
export async function retire(catalog: Catalog, name: string, version: number): Promise<ProcessorRecord> {
  return catalog.mutate(name, (cur) => {
    if (!cur) throw new InputError(`processor ${name} is not deployed`);
    const v = versionOf(cur, version);
    if (cur.live === version) {
      throw new InputError(`${name} v${version} is live and cannot be retired`, { hint: "promote another version (or `kappa rollback`) first", code: "RETIRE_LIVE" });
    }
    if (v.state === "retired") return cur;
    v.state = "retired";
    cur.previousLive = cur.previousLive.filter((p) => p !== version);
    addHistory(cur, { action: "retire", version });
    return cur;
  });
}

/** Records that a version has caught up (at `checkpoint`, when known, with the schema notes its build made); the first version of a processor, or one deployed with --promote, goes live. */
export async function markCaughtUp(catalog: Catalog, name: string, version: number, fence?: WriterFence, at: { checkpoint?: number; notes?: SchemaNote[] } = {}): Promise<ProcessorRecord> {
  const { checkpoint, notes } = at;
  return catalog.mutate(name, (cur) => {
    if (!cur) throw new KappaError("CATALOG_MISSING", `processor ${name} vanished from the catalog`);
    const v = versionOf(cur, version);
    checkFence(name, v, fence);
    if (v.state !== "building") return cur;
    v.state = "caught-up";
    if (notes?.length) v.schemaWarnings = notes;
    v.caughtUpAt = new Date().toISOString();
    // --promote was a wish made at deploy time: a promotion or rollback someone made since then wins.
    const overtaken = v.promoteWhenCaughtUp === true && (cur.promotions ?? 0) !== (v.promoteAfter ?? cur.promotions ?? 0);
    addHistory(cur, { action: "caught-up", version, ...(checkpoint !== undefined ? { seq: checkpoint } : {}), ...(overtaken ? { detail: `not promoted: the live version was changed (to v${cur.live}) after --promote was asked for` } : {}) });
    // A frozen version never goes live by itself: it serves the past.
    if (v.untilSeq === undefined) {
      if (cur.live === null) applyPromotion(cur, version, "promote", false);
      else if (v.promoteWhenCaughtUp && !overtaken) applyPromotion(cur, version, "promote");
    }
    delete v.promoteWhenCaughtUp;
    return cur;
  });
}

/** Marks a version failed with the event and error; a failed live version stays live (it keeps serving what it has). */
export async function markFailed(catalog: Catalog, name: string, version: number, failure: VersionFailure, fence?: WriterFence, notes?: SchemaNote[]): Promise<ProcessorRecord> {
  return catalog.mutate(name, (cur) => {
    if (!cur) throw new KappaError("CATALOG_MISSING", `processor ${name} vanished from the catalog`);
    const v = versionOf(cur, version);
    checkFence(name, v, fence);
    if (v.state === "failed" || v.state === "retired") return cur;
    v.error = failure;
    if (notes?.length) v.schemaWarnings = notes;
    if (v.state !== "live") v.state = "failed";
    addHistory(cur, { action: "fail", version, detail: failure.message });
    return cur;
  });
}
