import { describe, it, expect } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DevProcess, pidAlive } from "./support/dev.js";
import { kappa } from "./support/cli.js";

describe("kappa dev --cluster 3", () => {
  it("runs the log on three servers with three replicas, and Ctrl-C stops all three", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-e2e-cluster-"));
    try {
      {
        await using dev = await DevProcess.start(dir, ["--cluster", "3", "--no-serve"]);
        expect(dev.natsPids).toHaveLength(3);
        expect(dev.nats.split(",")).toHaveLength(3);
        const appended = kappa(["--data-dir", dir, "append", "order.placed", '{"user":"u1","amount":3}']);
        expect(appended.code, appended.stderr).toBe(0);
        const info = kappa(["--data-dir", dir, "--json", "log", "info"]);
        const j = JSON.parse(info.stdout) as { messages: number; replicas: number; cluster: { leader: string; replicas: { name: string; current: boolean }[] } };
        expect(j.messages).toBe(1);
        expect(j.replicas).toBe(3);
        expect(j.cluster.replicas.map((r) => r.name).sort()).toEqual(["n1", "n2", "n3"]);
        expect(j.cluster.replicas.find((r) => r.name === j.cluster.leader)).toBeDefined();
        // An existing stream with fewer replicas than asked is reported, not silently used.
        const more = kappa(["--data-dir", dir, "--replicas", "5", "append", "order.placed", '{"user":"u1","amount":3}']);
        expect(more.code).not.toBe(0);
        expect(more.stderr).toMatch(/stream KAPPA keeps 3 replica\(s\), but --replicas asks for 5/);
        const bad = kappa(["--data-dir", dir, "--replicas", "two", "log", "info"]);
        expect(bad.stderr).toMatch(/--replicas two is not a whole number from 1 to 5/);
        const pids = dev.natsPids;
        expect(await dev.stop("SIGINT")).toBe(0);
        expect(pids.filter(pidAlive)).toEqual([]);
      } // disposed here, while its servers' PIDs are freshly gone (no stale PID is signalled later)
      // Started again on the same data dir, the cluster comes back from its stores with the log it had.
      await using again = await DevProcess.start(dir, ["--cluster", "3", "--no-serve"]);
      const back = JSON.parse(kappa(["--data-dir", dir, "--json", "log", "info"]).stdout) as { messages: number; replicas: number };
      expect(back).toMatchObject({ messages: 1, replicas: 3 });
      const againPids = again.natsPids;
      expect(await again.stop("SIGINT")).toBe(0);
      expect(againPids.filter(pidAlive)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
