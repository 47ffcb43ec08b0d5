import type { RawEvent } from "../log/index.js";
import type { KappaEvent, ProcessorDefinition, Upcaster } from "./define.js";

/** Brings one event's data to the newest schema version its processor knows; throws on an unreadable version or a failing upcaster. */
export type Upcast = (raw: RawEvent, data: unknown, event: KappaEvent) => unknown;

/** The schema version an event carries: its Kappa-Schema-Version header, 1 when absent. */
export function schemaVersionOf(raw: Pick<RawEvent, "schemaHeader">): number {
  const h = raw.schemaHeader;
  if (h === undefined || h === "") return 1;
  const n = /^\d+$/.test(h) ? Number(h) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`schema version header "${h}" is not a positive integer`);
  return n;
}

/** The newest schema version a processor declares for a type: its upcaster chain's length + 1 (1 without upcasters). */
export function newestSchemaVersion(def: Pick<ProcessorDefinition, "upcasters">, type: string): number {
  return (def.upcasters?.[type]?.length ?? 0) + 1;
}

/**
 * The processor's upcasting step, or null when it declares no upcasters (then nothing runs, not even a
 * header read). An event of version k runs chain[k-1], chain[k], … in order. Types without a chain, and
 * versions newer than the chain knows, pass unchanged: `kappa deploy` warns about those beforehand.
 */
export function compileUpcasters(def: ProcessorDefinition): Upcast | null {
  const chains = new Map<string, Upcaster[]>();
  for (const [type, chain] of Object.entries(def.upcasters ?? {})) if (chain.length > 0) chains.set(type, chain);
  if (chains.size === 0) return null;
  return (raw, data, event) => {
    const chain = chains.get(raw.type);
    if (!chain) return data;
    const from = schemaVersionOf(raw);
    let d = data;
    for (let k = from; k <= chain.length; k++) {
      try {
        d = chain[k - 1]!(d, event);
      } catch (err) {
        throw new Error(`upcaster ${raw.type} v${k}→v${k + 1} threw: ${(err as Error)?.message ?? String(err)}`, { cause: err });
      }
      if (d === undefined) throw new Error(`upcaster ${raw.type} v${k}→v${k + 1} returned nothing (it must return the new data)`);
    }
    return d;
  };
}
