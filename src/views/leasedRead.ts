import { existsSync } from "node:fs";
import { KappaError } from "../errors.js";
import { takeLease } from "./leases.js";
import type { DataDir } from "./paths.js";
import { waitForSeq } from "./seqWait.js";

/** One view a query reads: the version resolved for it and its file. */
export interface PickedView {
  processor: string;
  version: number;
  path: string;
}

/** How to resolve the views a query reads, and what to wait for before reading. */
export interface LeasedReadPlan {
  /** Resolves every view's version (again on each attempt: the live pointer may have moved). */
  pick: (attempt: number) => Promise<PickedView[]>;
  /** True when every version was resolved from the live pointer, so a retired one can be resolved anew. */
  live: boolean;
  /** Wait until every picked file has applied this sequence (read-your-writes). */
  minSeq?: number;
  deadline: number;
}

/**
 * Runs `read` while reader leases keep the picked views' files from being deleted. The leases come before
 * the first look at a file: from then until release the worker cannot delete it. A live version retired
 * between resolving and opening is resolved again (at most twice); a named one that is gone is VIEW_MISSING.
 */
export async function readLeased<T>(dataDir: DataDir, plan: LeasedReadPlan, read: (picked: PickedView[]) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const picked = await plan.pick(attempt);
    const releases: (() => void)[] = [];
    try {
      for (const p of picked) releases.push(takeLease(dataDir.viewsOf(p.processor), p.version));
      if (plan.minSeq !== undefined) for (const p of picked) await waitForSeq(p.path, plan.minSeq, plan.deadline);
      const missing = picked.find((p) => !existsSync(p.path));
      if (missing) {
        if (attempt < 2 && plan.live) continue;
        throw new KappaError("VIEW_MISSING", `view file of ${missing.processor} v${missing.version} is not in ${dataDir.root}`, {
          hint: "is `kappa run` (or `kappa dev`) running with this --data-dir? It builds the file from the log",
        });
      }
      return await read(picked);
    } finally {
      for (const r of releases) r();
    }
  }
}
