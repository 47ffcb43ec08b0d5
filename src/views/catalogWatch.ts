import type { KV, KvEntry } from "@nats-io/kv";
import { KappaError, messageOf } from "../errors.js";
import type { ProcessorRecord } from "./catalogTypes.js";

/** A KV watch that outlives its consumer: see followKv. */
export interface Follower {
  /** Stops for good. */
  stop(): void;
  /** Drops the current watch and starts a new one (which hands over every current value again). */
  restart(): void;
  /** Settles once stopped. */
  closed: Promise<void>;
}

const FIRST_RETRY_MS = 100;
const LAST_RETRY_MS = 5000;

/**
 * Watches `key` in a KV bucket and keeps watching: when the watch ends or fails (NATS restarted, the
 * connection lost, the consumer gone) it says so through `onTrouble` and starts again with backoff; a new
 * watch hands over the latest value of every key, so nothing changed meanwhile is missed. An `onEntry`
 * that throws (a malformed value) is reported and skipped, never the end of the watch.
 */
export function followKv(kv: KV, key: string, onEntry: (e: KvEntry) => void, onTrouble: (message: string) => void): Follower {
  let stopped = false;
  let current: { stop(): void } | undefined;
  let wake: (() => void) | undefined;
  const closed = (async () => {
    let delay = FIRST_RETRY_MS;
    while (!stopped) {
      try {
        const iter = await kv.watch({ key });
        current = iter;
        if (stopped) iter.stop();
        for await (const e of iter) {
          delay = FIRST_RETRY_MS;
          try {
            onEntry(e);
          } catch (err) {
            onTrouble(`catalog entry ${e.key} (revision ${e.revision}) skipped: ${messageOf(err)}`);
          }
        }
        if (!stopped && current === iter) onTrouble(`catalog watch on ${key} ended — watching again`);
      } catch (err) {
        if (!stopped) onTrouble(`catalog watch on ${key} failed: ${messageOf(err)} — retrying`);
      }
      if (stopped) break;
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, delay).unref();
      });
      delay = Math.min(LAST_RETRY_MS, delay * 2);
    }
  })();
  return {
    stop() {
      stopped = true;
      current?.stop();
      wake?.();
    },
    restart() {
      const c = current;
      current = undefined;
      c?.stop();
    },
    closed,
  };
}

/** Parses a processor record from a KV value, refusing what is not one (a hand-edited or foreign value). */
export function parseProcessorRecord(e: KvEntry, name: string): ProcessorRecord {
  let r: ProcessorRecord;
  try {
    r = e.json<ProcessorRecord>();
  } catch (err) {
    throw corrupt(name, `not JSON (${messageOf(err)})`);
  }
  const ok =
    r !== null && typeof r === "object" && r.name === name && typeof r.nextVersion === "number" &&
    (r.live === null || typeof r.live === "number") && Array.isArray(r.previousLive) && Array.isArray(r.history) &&
    r.versions !== null && typeof r.versions === "object" &&
    Object.values(r.versions).every((v) => v !== null && typeof v === "object" && typeof v.version === "number" && typeof v.state === "string");
  if (!ok) throw corrupt(name, "not a processor record");
  return r;
}

function corrupt(name: string, why: string): KappaError {
  return new KappaError("CATALOG_CORRUPT", `the catalog entry of ${name} is ${why}`, {
    hint: `it was written by something other than Kappa; fix or delete the key proc.${name} in the catalog bucket`,
  });
}
