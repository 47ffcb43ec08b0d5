import type { VersionFailure } from "../views/index.js";
import type { ThreadPosition } from "./applyHost.js";

function where(at: ThreadPosition): string {
  return at.seq !== undefined ? ` on event ${at.seq}${at.type ? ` (${at.type})` : ""}` : "";
}

function failure(message: string, at: ThreadPosition): VersionFailure {
  return { message, ...(at.seq !== undefined ? { seq: at.seq } : {}), ...(at.type ? { type: at.type } : {}), at: new Date().toISOString() };
}

// The failure records carry the event (seq, type); whoever shows one names it once, so messages do not.

/** A handler that did not return in time: what happened and what to do. */
export function stuckFailure(processor: string, timeoutMs: number, at: ThreadPosition, stalledMs: number): VersionFailure {
  return failure(`${processor} handler did not return within ${timeoutMs} ms (stuck for ${stalledMs} ms); its thread was stopped — fix the handler and deploy again, or raise --handler-timeout`, at);
}

/** A thread that kept dying at one checkpoint. */
export function crashFailure(processor: string, version: number, reason: string, at: ThreadPosition, times: number, checkpoint: number): VersionFailure {
  return failure(`${processor} v${version}: ${reason}, ${times} times at checkpoint ${checkpoint} — fix the handler and deploy again`, at);
}

/** The line logged when a crashed thread is restarted. */
export function crashRestartLine(processor: string, version: number, reason: string, at: ThreadPosition, checkpoint: number): string {
  return `${processor} v${version}: ${reason}${where(at)} — restarting it from checkpoint ${checkpoint}`;
}
