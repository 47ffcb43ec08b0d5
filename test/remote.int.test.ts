import { describe, it, expect } from "vitest";
import { join, resolve } from "node:path";
import { Svcm } from "@nats-io/services";
import { TestEnv, waitFor } from "./support/env.js";
import { kappa } from "./support/cli.js";
import { WorkerProcess } from "./support/workerProcess.js";
import { referenceTotals } from "./support/reference.js";
import { deployModule } from "../src/processors/index.js";
import { DataDir, readCheckpoint, remoteQuery, QUERY_SERVICE } from "../src/views/index.js";

const SQL = "SELECT user_id, orders, amount FROM totals ORDER BY user_id";

describe("queries over NATS (3-server cluster, two workers)", () => {
  it("any replica answers, equal to the reference, while a worker is killed and while a NATS server is killed; --min-seq sees the write", async () => {
    await using env = await TestEnv.start({ cluster: 3 });
    const events = await env.appendOrders(4000, 501);
    const dirs = ["w1", "w2"].map((w) => new DataDir(join(env.dir, w)));
    const procs = ["w1", "w2"].map((w, i) => WorkerProcess.start(env.nats.url, dirs[i]!.root, ["--worker-id", w], ["--replicas", "3"]));
    try {
      await deployModule(env.nc, env.spec, resolve("examples/orders/orders_by_user_v2.ts"));
      await env.waitForRecord("orders_by_user", (r) => r.live === 1);
      await waitFor(() => dirs.every((d) => readCheckpoint(d.viewFile("orders_by_user", 1)) === events.length), 30_000, "both replicas at the head");
      const all = [...events];
      const expected = () => referenceTotals(all, true).sort((a, b) => a.user_id.localeCompare(b.user_id));

      // Discoverable the way NATS services are: both workers register the endpoint.
      const infos = [];
      for await (const i of await new Svcm(env.nc as never).client().info(QUERY_SERVICE)) infos.push(i);
      expect(infos.map((i) => i.metadata?.worker).sort()).toEqual(["w1", "w2"]);
      expect(infos[0]!.endpoints.map((e) => e.subject)).toContain("kappa.KAPPA.query.orders_by_user");

      const answeredBy = new Set<string>();
      let asked = 0;
      const ask = async () => {
        const a = await remoteQuery(env.nc, env.spec.stream, "orders_by_user", { sql: SQL, timeoutMs: 8000 });
        expect(a.rows).toEqual(expected());
        answeredBy.add(a.worker);
        asked++;
      };
      // Asks in a loop until stopped; the kills land once it has answers, and it stops once it has more after them.
      const loop = () => {
        let stop = false;
        const done = (async () => {
          while (!stop) await ask();
        })();
        return { done, stop: async () => ((stop = true), await done) };
      };
      // A wrong answer fails the loop: it fails the wait at once, not at its timeout.
      const until = (l: ReturnType<typeof loop>, check: () => boolean, what: string) => Promise.race([waitFor(check, 30_000, what), l.done.then(() => undefined)]);
      const moreAnswers = (l: ReturnType<typeof loop>, n: number, what: string) => {
        const from = asked;
        return until(l, () => asked >= from + n, what);
      };
      const first = loop();
      await until(first, () => answeredBy.size === 2, "answers from both workers");
      await first.stop();
      expect([...answeredBy].sort()).toEqual(["w1", "w2"]);
      const during = loop();
      await moreAnswers(during, 5, "answers before the worker is killed");
      await procs[0]!.kill("SIGKILL");
      await moreAnswers(during, 10, "answers after the worker was killed");
      await during.stop();
      // Read-your-writes through a remote query.
      const seq = await env.append([{ type: "order.placed", id: "rw-1", data: { user: "zz-new", amount: 5, order: "rw-1" } }]);
      const a = await remoteQuery(env.nc, env.spec.stream, "orders_by_user", { sql: "SELECT orders, amount FROM totals WHERE user_id = 'zz-new'", minSeq: seq, timeoutMs: 8000 });
      expect(a.seq).toBeGreaterThanOrEqual(seq);
      expect(a.rows).toEqual([{ orders: 1, amount: 5 }]);
      all.push({ type: "order.placed", id: "rw-1", data: { user: "zz-new", amount: 5, order: "rw-1" } } as (typeof all)[number]);

      answeredBy.clear();
      const server = await env.leaderOf();
      const serverLoop = loop();
      await moreAnswers(serverLoop, 5, "answers before the server is killed");
      await env.cluster.kill(server);
      await moreAnswers(serverLoop, 10, "answers after the server was killed");
      await serverLoop.stop();
      expect([...answeredBy]).toEqual(["w2"]);
      expect(asked).toBeGreaterThan(10);

      // The binary: --json names the worker that answered; an error says which worker gave it.
      const out = kappa(["--nats", env.nats.url, "--json", "query", "orders_by_user", "--remote", "SELECT count(*) AS n FROM totals"]);
      expect(out.code).toBe(0);
      expect(JSON.parse(out.stdout)).toMatchObject({ processor: "orders_by_user", version: 1, worker: "w2", rows: [{ n: expected().length }] });
      const bad = kappa(["--nats", env.nats.url, "query", "orders_by_user", "--remote", "SELECT nope FROM totals"]);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/no such column: nope.*answered by w2/);
    } catch (err) {
      for (const p of procs) console.error(p.output.slice(-2000));
      throw err;
    } finally {
      for (const p of procs) await p.kill();
    }
  }, 120_000);
});
