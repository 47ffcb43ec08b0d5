import { describe, it, expect } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { TestEnv } from "./support/env.js";
import { kappaAsync } from "./support/cli.js";
import { appendEvents, readBatches } from "../src/log/index.js";

const LINES = 40_000;

const sha = (lines: string[]) => createHash("sha256").update(lines.join("\n")).digest("hex");

/** Every event in the stream, in stream order, as `type id data`. */
async function streamLines(env: TestEnv): Promise<string[]> {
  const out: string[] = [];
  const dec = new TextDecoder();
  for await (const b of readBatches(env.js, { stream: env.spec.stream, prefix: env.spec.prefix, follow: false })) {
    for (const e of b.events) out.push(`${e.type} ${e.id} ${dec.decode(e.data)}`);
  }
  return out;
}

function orderFile(env: TestEnv, name: string): { file: string; expected: string[] } {
  const data = Array.from({ length: LINES }, (_, i) => ({ type: "order.placed", id: `${name}-${i}`, data: { n: i, user: `u${i % 97}` } }));
  const file = join(env.dir, `${name}.ndjson`);
  writeFileSync(file, data.map((e) => JSON.stringify(e)).join("\n") + "\n");
  return { file, expected: data.map((e) => `${e.type} ${e.id} ${JSON.stringify(e.data)}`) };
}

describe("append --file beside other writers", () => {
  it("stores every line of the file exactly once, in file order, while another writer appends to the same stream", async () => {
    await using env = await TestEnv.start();
    const { file, expected } = orderFile(env, "file");
    let done = false;
    const run = kappaAsync(["--nats", env.server.url, "--data-dir", env.dataDir.root, "append", "--file", file]).finally(() => (done = true));
    // The other writer: small appends of its own type for as long as the file's append runs.
    const other: string[] = [];
    while (!done) {
      const chunk = Array.from({ length: 50 }, (_, k) => ({ type: "audit.noted", id: `w-${other.length + k}`, json: JSON.stringify({ k: other.length + k }) }));
      await appendEvents(env.nc, env.spec, chunk);
      for (const e of chunk) other.push(`${e.type} ${e.id} ${e.json}`);
    }
    const r = await run;
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const stored = await streamLines(env);
    const mine = stored.filter((l) => l.startsWith("order.placed "));
    expect(mine.length).toBe(LINES);
    expect(sha(mine)).toBe(sha(expected));
    expect(sha(stored.filter((l) => l.startsWith("audit.noted ")))).toBe(sha(other));
    // The writers really overlapped: the other writer's events sit between the file's first and last line.
    const firstAt = stored.indexOf(mine[0]!);
    const lastAt = stored.lastIndexOf(mine[mine.length - 1]!);
    expect(stored.slice(firstAt, lastAt).some((l) => l.startsWith("audit.noted "))).toBe(true);
  }, 120_000);

  it("two runs of the same file at the same time store it exactly once, in file order", async () => {
    await using env = await TestEnv.start();
    const { file, expected } = orderFile(env, "twice");
    const args = ["--nats", env.server.url, "--data-dir", env.dataDir.root, "append", "--file", file];
    const [a, b] = await Promise.all([kappaAsync(args), kappaAsync(args)]);
    expect([a.code, b.code, a.stderr, b.stderr]).toEqual([0, 0, "", ""]);
    const stored = await streamLines(env);
    expect(stored.length).toBe(LINES);
    expect(sha(stored)).toBe(sha(expected));
  }, 120_000);
});
