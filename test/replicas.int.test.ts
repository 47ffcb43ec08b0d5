import { describe, it, expect } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestEnv, waitFor } from "./support/env.js";
import { WorkerProcess } from "./support/workerProcess.js";
import { kappa } from "./support/cli.js";
import { Catalog } from "../src/views/index.js";
import { LeaseTable, outputOf } from "../src/processors/index.js";

describe("buckets with fewer replicas than asked", () => {
  it("warns at worker start and in `kappa status` with the command that fixes it, and stops once it is fixed", async () => {
    await using env = await TestEnv.start({ cluster: 3 });
    // Made while the log was on one server: JetStream keeps an existing bucket's R1 whatever a later create asks.
    await Catalog.open(env.nc, env.spec.stream, 1);
    await LeaseTable.open(env.nc, env.spec.stream, "setup", undefined, 1);
    // And an output stream of a pipeline stage, made by hand the same way.
    await env.jsm.streams.add({ name: outputOf(env.spec.stream, "facts", 1).stream, subjects: [`${outputOf(env.spec.stream, "facts", 1).prefix}.>`], num_replicas: 1 });
    const dir = mkdtempSync(join(tmpdir(), "kappa-replicas-"));
    try {
      await using worker = WorkerProcess.start(env.nats.url, dir, ["--worker-id", "w1"], ["--replicas", "3"]);
      await waitFor(() => /running on/.test(worker.output), 30_000, "the worker to start");
      expect(worker.output).toMatch(/warning: fewer replicas than --replicas asks for 3: the catalog \(KV_KAPPA_catalog\) keeps 1, the writer leases \(KV_KAPPA_leases\) keeps 1, the output of facts v1 \(KAPPA_OUT_facts_v1\) keeps 1\n\s+hint: raise them with `kappa --replicas 3 log replicas --apply` \(or `nats stream edit KV_KAPPA_catalog --replicas 3` and `nats stream edit KV_KAPPA_leases --replicas 3` and `nats stream edit KAPPA_OUT_facts_v1 --replicas 3`\)/);
      // What the worker created itself is replicated as asked, so it is not named.
      expect(worker.output).not.toMatch(/KV_KAPPA_workers/);

      const args = ["--nats", env.nats.url, "--data-dir", dir, "--replicas", "3", "status"];
      const shown = kappa(args);
      expect(shown.code).toBe(0);
      expect(shown.stdout).toMatch(/WARNING: fewer replicas than --replicas asks for 3: the catalog \(KV_KAPPA_catalog\) keeps 1/);
      expect(shown.stdout).toMatch(/hint: raise them with `kappa --replicas 3 log replicas --apply` \(or `nats stream edit KV_KAPPA_catalog --replicas 3`/);
      const json = JSON.parse(kappa([...args, "--json"]).stdout) as { replicaShortfalls?: { stream: string; has: number; wants: number }[] };
      expect(json.replicaShortfalls?.map((s) => `${s.stream} ${s.has}/${s.wants}`)).toEqual(["KV_KAPPA_catalog 1/3", "KV_KAPPA_leases 1/3", "KAPPA_OUT_facts_v1 1/3"]);

      // What the hint says: the warning goes, and the streams really keep 3 copies now.
      const g = ["--nats", env.nats.url, "--data-dir", dir, "--replicas", "3"];
      const applied = kappa([...g, "log", "replicas", "--apply"]);
      expect(applied.code).toBe(0);
      expect(applied.stdout).toMatch(/raised the catalog \(KV_KAPPA_catalog\) from 1 to 3 replicas/);
      for (const s of ["KV_KAPPA_catalog", "KV_KAPPA_leases", "KAPPA_OUT_facts_v1"]) expect((await env.jsm.streams.info(s)).config.num_replicas).toBe(3);
      expect(kappa([...g, "log", "replicas"]).stdout).toMatch(/every bucket and output stream of this log keeps as many replicas as asked/);
      // More than the cluster has servers cannot be: one line and a hint.
      const tooMany = kappa(["--nats", env.nats.url, "--data-dir", dir, "--replicas", "5", "log", "replicas", "--apply"]);
      expect(tooMany.code).not.toBe(0);
      expect(tooMany.stderr).toMatch(/^kappa: cannot raise the log \(KAPPA\) to 5 replicas: .*\n {2}hint: a stream keeps at most as many replicas as the cluster has servers/);
      const fixed = kappa(args);
      expect(fixed.code).toBe(0);
      expect(fixed.stdout).not.toMatch(/replicas/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
