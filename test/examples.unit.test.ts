import { describe, it, expect } from "vitest";
import { resolve } from "node:path";
import { processorSpec, type TestEvent } from "kappa/testing";
import { generatePageViews } from "../examples/pageviews/generate.js";

const example = (p: string) => resolve("examples", p);
const placed = (order: string, user: string, amount: number): TestEvent => ({ type: "order.placed", data: { order, user, amount, product: "p1", quantity: 1 } });
const refunded = (order: string, user: string, amount: number): TestEvent => ({ type: "order.refunded", data: { order, user, amount } });

describe("the examples, specified with kappa/testing (every event also delivered twice)", () => {
  it("orders_by_user v1 counts placed orders per user and ignores refunds", async () => {
    await processorSpec(example("orders/orders_by_user.ts"))
      .given([placed("o1", "ann", 10), placed("o2", "bob", 5)])
      .when([placed("o3", "ann", 2.5), refunded("o1", "ann", 10)])
      .then({ totals: [{ user_id: "ann", orders: 2, amount: 12.5 }, { user_id: "bob", orders: 1, amount: 5 }] });
  });

  for (const file of ["orders/orders_by_user_v2.ts", "orders/orders_by_user.sql"]) {
    it(`${file} subtracts refunds, and its top_users query ranks by amount`, async () => {
      const spec = processorSpec(example(file));
      const history = [placed("o1", "ann", 10), placed("o2", "bob", 5), placed("o3", "cy", 7)];
      await spec.given(history).when([refunded("o1", "ann", 10)]).then({
        totals: [{ user_id: "ann", orders: 0, amount: 0 }, { user_id: "bob", orders: 1, amount: 5 }, { user_id: "cy", orders: 1, amount: 7 }],
      });
      await spec.given(history).when([refunded("o1", "ann", 10)]).thenQuery("top_users", { n: 2 }, [
        { user_id: "cy", orders: 1, amount: 7 },
        { user_id: "bob", orders: 1, amount: 5 },
      ]);
    });
  }

  it("orders_by_customer reads order.placed in any of its three schema versions through its upcasters", async () => {
    await processorSpec(example("schemas/orders_by_customer.ts"))
      .given([placed("o1", "ann", 10)])
      .when([
        { type: "order.placed", schemaVersion: 2, data: { order: "o2", customer: { id: "ann" }, amount: 2.5, product: "p1", quantity: 1 } },
        { type: "order.placed", schemaVersion: 3, data: { order: "o3", customer: { id: "bob" }, amount_cents: 700, product: "p1", quantity: 1 } },
        refunded("o1", "ann", 10),
      ])
      .then({ customers: [{ customer_id: "ann", orders: 1, cents: 250 }, { customer_id: "bob", orders: 1, cents: 700 }] });
  });

  it("order_facts keeps signed movements and emits money.moved for each", async () => {
    await processorSpec(example("pipeline/order_facts.ts"))
      .given([placed("o1", "ann", 10)])
      .when([refunded("o1", "ann", 10), { type: "order.paid", data: { order: "o1", user: "ann", amount: 10 } }])
      .then((view) => {
        expect(view.rows("movements")).toEqual([{ seq: 1, user_id: "ann", delta: 10 }, { seq: 2, user_id: "ann", delta: -10 }]);
        expect(view.emitted()).toEqual([
          { type: "money.moved", data: { user: "ann", delta: 10, order: "o1" } },
          { type: "money.moved", data: { user: "ann", delta: -10, order: "o1" } },
        ]);
      });
  });

  it("user_spend emits tier.changed only when a user moves tier, and tier_counts follows the changes", async () => {
    const moved = (user: string, delta: number): TestEvent => ({ type: "money.moved", data: { user, delta } });
    await processorSpec(example("pipeline/user_spend.ts"))
      .given([moved("ann", 100)])
      .when([moved("ann", 250), moved("ann", 10), moved("ann", 700)])
      .then((view) => {
        expect(view.rows("spend")).toEqual([{ user_id: "ann", total: 1060, tier: "gold" }]);
        expect(view.emitted().map((e) => e.data)).toEqual([
          { user: "ann", from: null, to: "bronze" },
          { user: "ann", from: "bronze", to: "silver" },
          { user: "ann", from: "silver", to: "gold" },
        ]);
      });
    const changed = (user: string, from: string | null, to: string): TestEvent => ({ type: "tier.changed", data: { user, from, to } });
    await processorSpec(example("pipeline/tier_counts.ts"))
      .given([changed("ann", null, "bronze"), changed("bob", null, "bronze")])
      .when([changed("ann", "bronze", "silver")])
      .thenQuery("tiers", {}, [{ tier: "bronze", users: 1 }, { tier: "silver", users: 1 }]);
  });

  it("pageviews: windows and sketches come out the same whether each event arrives once or twice", async () => {
    const views = [...generatePageViews(400, 3)];
    await processorSpec(example("pageviews/pageviews.ts"))
      .given(views.slice(0, 300))
      .when(views.slice(300))
      .then((view) => {
        const top = view.query("top_pages");
        expect(top.length).toBeGreaterThan(0);
        expect(top.reduce((n, r) => n + Number(r.views), 0)).toBeLessThanOrEqual(400);
        expect(view.query("busiest_minutes", { n: 100 }).reduce((n, r) => n + Number(r.views), 0)).toBe(400 - view.query("late").length / 2);
      });
  });
});

describe("kappa/testing itself", () => {
  it("fails a spec whose processor keeps state outside ctx.db (a redelivery would change the view)", async () => {
    let counter = 0;
    const leaky = {
      name: "leaky",
      schema: ["CREATE TABLE t (seq INTEGER PRIMARY KEY, n INTEGER NOT NULL)"],
      apply: (e: { seq: number }, ctx: { db: import("better-sqlite3").Database }) => {
        ctx.db.prepare("INSERT INTO t VALUES (?, ?)").run(e.seq, ++counter);
      },
    };
    await expect(processorSpec(leaky).given().when([{ type: "x", data: {} }, { type: "x", data: {} }]).then({})).rejects.toThrow(/delivering every event twice gave a different view.*table t/);
  });

  it("says which event a halting processor failed on, and thenFails matches it", async () => {
    const spec = processorSpec({
      name: "throws",
      schema: [],
      on: { "bad.thing": () => { throw new Error("no thanks"); }, "ok.thing": () => {} },
    });
    await expect(spec.given([{ type: "ok.thing", data: {} }]).when([{ type: "bad.thing", data: {} }]).then({})).rejects.toThrow(/event 2 \(bad\.thing\) of the spec failed: throws threw: no thanks/);
    await spec.given().when([{ type: "bad.thing", data: {} }]).thenFails("no thanks");
    await expect(spec.given().when([{ type: "ok.thing", data: {} }]).thenFails("x")).rejects.toThrow(/every event applied/);
  });

  it("compares whole tables: a missing or extra row fails the spec", async () => {
    const spec = processorSpec(example("orders/orders_by_user.ts")).given().when([placed("o1", "ann", 1)]);
    await expect(spec.then({ totals: [] })).rejects.toThrow(/table totals/);
    await expect(spec.then({ totals: [{ user_id: "ann", orders: 1, amount: 1 }, { user_id: "bob", orders: 1, amount: 1 }] })).rejects.toThrow(/table totals/);
  });
});
