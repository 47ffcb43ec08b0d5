import { describe, it, expect } from "vitest";
import { TestEnv } from "./support/env.js";
import { appendAtomic, appendFast, fastIngestReplicas, readBatches } from "../src/log/index.js";

const ev = (i: number) => ({ type: "order.placed", id: `o-${i}`, json: JSON.stringify({ n: i }) });

/** Every event's id, in stream order. */
async function storedIds(env: TestEnv): Promise<string[]> {
  const ids: string[] = [];
  for await (const b of readBatches(env.js, { stream: env.spec.stream, prefix: env.spec.prefix, follow: false })) for (const e of b.events) ids.push(e.id);
  return ids;
}

describe("looking up which ids are stored, without storing anything", () => {
  for (const servers of [1, 3]) {
    it(`on ${servers === 1 ? "a single server" : "a 3-server cluster (stream with 3 replicas)"}: an all-or-nothing append that overlaps stored ids stores only the rest, and the stream keeps taking appends`, async () => {
      await using env = await TestEnv.start(servers > 1 ? { cluster: servers } : {});
      await env.append([0, 1, 2, 3, 4].map((i) => ({ type: "order.placed", id: `o-${i}`, data: { n: i } })));
      // o-3 and o-4 are stored: the batch is refused whole, the ids are looked up, o-5..o-7 are sent again.
      const r = await appendAtomic(env.nc, env.spec, [3, 4, 5, 6, 7].map(ev));
      expect(r.duplicate).toEqual([true, true, false, false, false]);
      expect(r.seqs).toEqual([4, 5, 6, 7, 8]);
      // A fast-ingest append after the lookups (which it makes too): on 2.15.1 a replicated stream stopped
      // acknowledging publishes after refusing one lookup by expected last id.
      const fast = await appendFast(env.nc, env.spec, [6, 7, 8, 9, 10].map(ev), { replicas: (await fastIngestReplicas(env.nc, env.jsm, env.spec.stream))!, timeoutMs: 5000 });
      expect(fast).toMatchObject({ count: 5, stored: 3, duplicates: 2, lastSeq: 11 });
      expect(await storedIds(env)).toEqual(Array.from({ length: 11 }, (_, i) => `o-${i}`));
    }, 60_000);
  }
});
