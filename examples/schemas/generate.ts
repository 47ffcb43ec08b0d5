/**
 * The order generator's events with order.placed written in three schema versions, a third each
 * (`mixed`, the default), or all in the newest (`newest`). Prints NDJSON envelopes with `schemaVersion`.
 * Usage: tsx examples/schemas/generate.ts [count] [seed] [mixed|newest]
 */
import { generateOrders } from "../orders/generate.js";
import { placedV1ToV2, placedV2ToV3 } from "./shapes.js";

/** An envelope as `kappa append --file` reads it. */
export interface VersionedEvent {
  type: string;
  id: string;
  schemaVersion: number;
  data: Record<string, unknown>;
}

/** The generated orders, order.placed in schema version 1, 2 or 3 by turns (or always 3). */
export function* versionedOrders(count: number, seed = 1, mode: "mixed" | "newest" = "mixed"): Generator<VersionedEvent> {
  let n = 0;
  for (const e of generateOrders(count, seed)) {
    if (e.type !== "order.placed") {
      yield { ...e, schemaVersion: 1 };
      continue;
    }
    const v = mode === "newest" ? 3 : (n++ % 3) + 1;
    const v2 = placedV1ToV2(e.data as { user: string });
    const data = v === 1 ? e.data : v === 2 ? v2 : placedV2ToV3(v2 as { amount: number });
    yield { type: e.type, id: e.id, schemaVersion: v, data };
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [count, seed, mode] = [Number(process.argv[2] ?? 1000), Number(process.argv[3] ?? 1), (process.argv[4] ?? "mixed") as "mixed" | "newest"];
  const out: string[] = [];
  for (const e of versionedOrders(count, seed, mode)) out.push(JSON.stringify(e));
  process.stdout.write(out.join("\n") + "\n");
}
