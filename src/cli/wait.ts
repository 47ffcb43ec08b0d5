import cliProgress from "cli-progress";
import { KappaError } from "../errors.js";
import { Catalog, type SchemaNote, type VersionRecord } from "../views/index.js";
import { schemaWarning, type SchemaWarning } from "../processors/index.js";
import { fmtEta, fmtNum } from "./output.js";

/** Off a terminal, plain progress lines: at once, then whenever another tenth is done or 5 s have passed, whichever comes first. */
const PLAIN_STEP = 0.1;
const PLAIN_EVERY_MS = 5000;

/** How waitForVersion shows what it sees. */
export interface WaitOptions {
  quiet?: boolean;
  timeoutMs?: number;
  /**
   * The last sequence of the version's input now: the first progress line then comes at once, before any
   * worker has reported (on a large log a worker's first report can take a moment).
   */
  logHead?: () => Promise<number>;
  /** Each schema version the build meets that the code cannot upcast, once, as soon as a worker reports it. */
  onSchemaWarning?: (w: SchemaWarning) => void;
}

/** Waits until a version has caught up (returns its record) or failed (throws with the reason), showing progress on stderr. */
export async function waitForVersion(catalog: Catalog, name: string, version: number, opts: WaitOptions = {}): Promise<VersionRecord> {
  const tty = process.stderr.isTTY && !opts.quiet;
  const bar = tty ? new cliProgress.SingleBar({ format: `${name} v${version} [{bar}] {value}/{total} events | {eps} ev/s | ETA {etaText}`, hideCursor: true, stream: process.stderr }, cliProgress.Presets.shades_classic) : undefined;
  let started = false;
  let lastLine = 0;
  let lastDone = -1;
  const plain = !tty && !opts.quiet;
  let warned = false;
  const begun = Date.now();
  const deadline = opts.timeoutMs ? Date.now() + opts.timeoutMs : Infinity;
  const noted = new Set<string>();
  const note = (notes: SchemaNote[] | undefined, counted: boolean) => {
    for (const n of notes ?? []) {
      const key = `${n.type}\u0000${n.version}`;
      if (noted.has(key)) continue;
      noted.add(key);
      if (bar && started) bar.stop();
      opts.onSchemaWarning?.(schemaWarning(name, n, counted));
      if (bar && started) started = false; // the bar starts again below the warning
    }
  };
  const show = (done: number, total: number, eps: number, eta: string) => {
    if (bar) {
      if (!started) bar.start(total, done, { eps: "0", etaText: "-" });
      started = true;
      bar.setTotal(total);
      bar.update(done, { eps: fmtNum(eps), etaText: eta });
    } else if (plain && (lastDone < 0 || (done > lastDone && done - lastDone >= total * PLAIN_STEP) || Date.now() - lastLine >= PLAIN_EVERY_MS)) {
      lastLine = Date.now();
      lastDone = done;
      const pct = total > 0 ? Math.floor((done * 100) / total) : 0;
      process.stderr.write(`${name} v${version}: ${fmtNum(done)}/${fmtNum(total)} events (${pct}%), ${fmtNum(eps)} ev/s, ETA ${eta}\n`);
    }
  };
  let first = true;
  try {
    for (;;) {
      const rec = await catalog.require(name);
      const v = rec.versions[String(version)];
      if (!v) throw new KappaError("NOT_FOUND", `${name} v${version} vanished from the catalog`);
      if (v.state === "failed" || v.error) {
        note(v.schemaWarnings, true);
        throw new KappaError("VERSION_FAILED", `${name} v${version} failed${v.error?.seq ? ` at event ${v.error.seq} (${v.error.type})` : ""}: ${v.error?.message ?? "unknown error"}`, {
          hint: v.error?.seq ? "fix the processor and deploy again, or set onError: \"skip\" to record such events in the dead-letter table (`kappa dlq`)" : "fix the processor and deploy again; the live version is untouched",
        });
      }
      if (v.state === "retired") throw new KappaError("VERSION_RETIRED", `${name} v${version} was retired while waiting`);
      const stats = await catalog.stats(name, version);
      const base = (v.startSeq ?? 1) - 1;
      const done = stats ? Math.max(0, stats.checkpoint - base) : 0;
      const total = stats ? Math.max(done, done + stats.pending) : 0;
      if (v.state !== "building") {
        // The catch-up's record holds every note up to it; a report may have come first.
        note(v.schemaWarnings ?? stats?.schemaWarnings, true);
        if (bar && started) {
          bar.update(total, { eps: fmtNum(stats?.eventsPerSec ?? 0), etaText: "0s" });
        }
        // The last word off a terminal: a pipe or a CI log otherwise ends at the last tenth it saw.
        if (plain) process.stderr.write(`${name} v${version}: caught up — ${fmtNum(total)}/${fmtNum(total)} events (100%) in ${(buildMs(v, begun) / 1000).toFixed(1)} s\n`);
        return v;
      }
      if (stats) {
        note(stats.schemaWarnings, false);
        show(done, total, stats.eventsPerSec, stats.eventsPerSec > 0 ? fmtEta(stats.pending / stats.eventsPerSec) : "-");
      } else if (first && opts.logHead && !opts.quiet) {
        // Before a worker has reported: nothing applied yet, out of what the log holds now.
        const head = await opts.logHead().catch(() => undefined);
        if (head !== undefined) show(0, Math.max(0, Math.min(head, v.untilSeq ?? head) - base), 0, "-");
      }
      first = false;
      if (!stats && !warned && Date.now() - begun > 5000 && !opts.quiet) {
        warned = true;
        process.stderr.write(`no worker has reported on ${name} v${version} yet — is \`kappa run\` or \`kappa dev\` running against this NATS?\n`);
      }
      if (Date.now() > deadline) throw new KappaError("WAIT_TIMEOUT", `${name} v${version} has not caught up in time`, { hint: "is a worker running (`kappa run` or `kappa dev`)? see `kappa status`" });
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    bar?.stop();
  }
}

/**
 * How long the build took: from the version's registration, which the worker starts from (deploy may
 * spend a while after it before it waits), else from when the wait began.
 */
function buildMs(v: VersionRecord, waitBegan: number): number {
  const created = Date.parse(v.createdAt);
  const now = Date.now();
  return Number.isFinite(created) && created <= waitBegan ? now - created : now - waitBegan;
}
