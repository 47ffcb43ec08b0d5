import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import { rmSync } from "node:fs";
import Database from "better-sqlite3";
import { nanos } from "@nats-io/nats-core";
import { TestEnv, waitFor } from "./support/env.js";
import { readOutput } from "./support/derived.js";
import { deployModule, outputOf } from "../src/processors/index.js";
import { digestFile, readCheckpoint } from "../src/views/index.js";

const stage = (n: string) => resolve(`examples/pipeline/${n}.ts`);

/** Stream sequence of the last emitted event (writer fences, which are no events, may follow it). */
async function lastEventSeq(env: TestEnv, out: { stream: string; prefix: string }): Promise<number> {
  return (await env.jsm.streams.getMessage(out.stream, { last_by_subj: `${out.prefix}.>` }))?.seq ?? 0;
}

/** Rows still waiting in a view file's outbox. */
function outboxRows(file: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return Number(db.prepare("SELECT count(*) FROM kappa_outbox").pluck().get());
  } finally {
    db.close();
  }
}

describe("rebuilding a stage that emits", () => {
  it("republishes nothing once its view file is deleted, even after the output stream's duplicate window has passed", async () => {
    await using env = await TestEnv.start();
    const events = await env.appendOrders(3000, 301);
    const w = await env.startWorker();
    await deployModule(env.nc, env.spec, stage("order_facts"));
    await env.waitForRecord("order_facts", (r) => r.live === 1);
    await deployModule(env.nc, env.spec, stage("user_spend"));
    await env.waitForRecord("user_spend", (r) => r.live === 1);
    const out = outputOf(env.spec.stream, "order_facts", 1);
    const facts = env.dataDir.viewFile("order_facts", 1);
    const spend = env.dataDir.viewFile("user_spend", 1);
    const emitted = events.filter((e) => e.type === "order.placed" || e.type === "order.refunded").length;
    await waitFor(async () => (await readOutput(env.nc, out)).length === emitted && readCheckpoint(spend)! >= (await lastEventSeq(env, out)), 20_000, "stage 1 published, stage 2 read it all");
    const lastBefore = await lastEventSeq(env, out);
    const before = await readOutput(env.nc, out);
    const spendBefore = digestFile(spend).digest;
    await w.close();

    // The window that would have dropped a republish is gone; the view file is disposable.
    await env.jsm.streams.update(out.stream, { duplicate_window: nanos(1000) });
    await new Promise((r) => setTimeout(r, 1500));
    for (const f of [facts, `${facts}-wal`, `${facts}-shm`]) rmSync(f, { force: true });

    await env.startWorker();
    await waitFor(() => readCheckpoint(facts) === events.length && outboxRows(facts) === 0, 20_000, "stage 1 rebuilt, outbox empty");
    // Stage 2 has read whatever the output holds now (a republish would be in it), fences included.
    await waitFor(async () => readCheckpoint(spend)! >= (await env.jsm.streams.info(out.stream)).state.last_seq, 20_000, "stage 2 read the whole output");
    const after = await readOutput(env.nc, out);
    expect(after).toEqual(before); // event by event: type, data and id
    expect(await lastEventSeq(env, out)).toBe(lastBefore);
    expect(readCheckpoint(spend)).toBeGreaterThanOrEqual(lastBefore);
    expect(digestFile(spend).digest).toBe(spendBefore);
  });
});
