import { describe, it, expect } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { TestEnv, waitFor } from "./support/env.js";
import { kappa, kappaAsync } from "./support/cli.js";
import { readBatches } from "../src/log/index.js";

const LINES = 30_000;

/** SHA-256 over the data of every event in the stream, in stream order, and how many there are. */
async function streamDigest(env: TestEnv): Promise<{ count: number; digest: string }> {
  const h = createHash("sha256");
  let count = 0;
  const dec = new TextDecoder();
  for await (const b of readBatches(env.js, { stream: env.spec.stream, prefix: env.spec.prefix, follow: false })) {
    for (const e of b.events) {
      h.update(dec.decode(e.data) + "\n");
      count++;
    }
  }
  return { count, digest: h.digest("hex") };
}

describe("append --file across a NATS drop", () => {
  it("re-running the same file after the server died mid-file stores every line exactly once, in file order, without --id-field", async () => {
    await using env = await TestEnv.start();
    const lines = Array.from({ length: LINES }, (_, i) => JSON.stringify({ n: i, user: `u${i % 97}`, amount: i % 1000 }));
    const file = join(env.dir, "orders.ndjson");
    writeFileSync(file, lines.join("\n") + "\n");
    const expected = createHash("sha256").update(lines.map((l) => l + "\n").join("")).digest("hex");
    const args = ["--nats", env.server.url, "--data-dir", env.dataDir.root, "append", "order.placed", "--file", file];

    const first = kappaAsync(args);
    await waitFor(async () => (await env.jsm.streams.info(env.spec.stream)).state.messages > 5_000, 30_000, "the first run under way");
    await env.server.kill();
    const failed = await first;
    expect(failed.code).not.toBe(0);
    const server = await env.server.restart();
    try {
      const partial = (await waitFor(() => env.jsm.streams.info(env.spec.stream).catch(() => undefined), 20_000, "server back")).state.messages;
      expect(partial).toBeGreaterThan(0);
      expect(partial).toBeLessThan(LINES); // the drop really was mid-file
      const again = kappa(args);
      expect(again.stderr).toBe("");
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(new RegExp(`appended ${(LINES - partial).toLocaleString("en-US")} events.*\\(${partial.toLocaleString("en-US")} duplicates skipped\\)`));
      expect(await streamDigest(env)).toEqual({ count: LINES, digest: expected });
    } finally {
      await server.kill();
    }
  }, 120_000);

  it("holds a prefix of the file after a kill with many events in flight, and a re-run completes it exactly once, in order", async () => {
    await using env = await TestEnv.start();
    const lines = Array.from({ length: 2 * LINES }, (_, i) => JSON.stringify({ type: i % 3 ? "order.placed" : "order.paid", id: `o-${i}`, data: { n: i } }));
    const file = join(env.dir, "envelopes.ndjson");
    writeFileSync(file, lines.join("\n") + "\n");
    const dataOf = (l: string) => JSON.stringify((JSON.parse(l) as { data: unknown }).data) + "\n";
    const digestOf = (ls: string[]) => createHash("sha256").update(ls.map(dataOf).join("")).digest("hex");
    const args = ["--nats", env.server.url, "--data-dir", env.dataDir.root, "append", "--file", file];

    const first = kappaAsync(args);
    await waitFor(async () => (await env.jsm.streams.info(env.spec.stream)).state.messages > 10_000, 30_000, "the first run under way");
    await env.server.kill();
    expect((await first).code).not.toBe(0);
    const server = await env.server.restart();
    try {
      await waitFor(() => env.jsm.streams.info(env.spec.stream).catch(() => undefined), 20_000, "server back");
      const partial = await streamDigest(env);
      expect(partial.count).toBeGreaterThan(0);
      expect(partial.count).toBeLessThan(lines.length);
      expect(partial.digest).toBe(digestOf(lines.slice(0, partial.count))); // a prefix: no later line without every earlier one
      const again = kappa(args);
      expect(again.stderr).toBe("");
      expect(again.code).toBe(0);
      expect(await streamDigest(env)).toEqual({ count: lines.length, digest: digestOf(lines) });
    } finally {
      await server.kill();
    }
  }, 120_000);
});
