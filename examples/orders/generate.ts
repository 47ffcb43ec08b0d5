/**
 * Seeded order-events generator: placed, paid, shipped, refunded, over many users and products.
 * Prints NDJSON envelopes `{"type","id","data"}`. Usage: tsx examples/orders/generate.ts [count] [seed]
 */
import { seededRandom } from "../../src/processors/random.js";

/** One generated event. */
export interface OrderEvent {
  type: "order.placed" | "order.paid" | "order.shipped" | "order.refunded";
  id: string;
  data: Record<string, unknown>;
}

/** Generates `count` order events deterministically from `seed`. */
export function* generateOrders(count: number, seed = 1, users = 500, products = 200): Generator<OrderEvent> {
  const rnd = seededRandom(`orders/${seed}`);
  const open: { order: string; user: string; amount: number; stage: number }[] = [];
  let next = 0;
  for (let i = 0; i < count; i++) {
    if (open.length === 0 || rnd() < 0.4) {
      const order = `o${seed}-${next++}`;
      const user = `u${Math.floor(rnd() * users)}`;
      const amount = Math.round((5 + rnd() * 195) * 100) / 100;
      if (open.length < 10_000) open.push({ order, user, amount, stage: 0 });
      yield { type: "order.placed", id: `${order}:placed`, data: { order, user, product: `p${Math.floor(rnd() * products)}`, amount, quantity: 1 + Math.floor(rnd() * 3) } };
      continue;
    }
    const idx = Math.floor(rnd() * open.length);
    const o = open[idx]!;
    const last = () => open.splice(idx, 1);
    if (o.stage === 0) {
      o.stage = 1;
      yield { type: "order.paid", id: `${o.order}:paid`, data: { order: o.order, user: o.user, amount: o.amount } };
    } else if (o.stage === 1) {
      o.stage = 2;
      if (rnd() < 0.1) last();
      yield { type: "order.shipped", id: `${o.order}:shipped`, data: { order: o.order, user: o.user } };
    } else {
      last();
      yield { type: "order.refunded", id: `${o.order}:refunded`, data: { order: o.order, user: o.user, amount: o.amount } };
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const count = Number(process.argv[2] ?? 1000);
  const seed = Number(process.argv[3] ?? 1);
  const out: string[] = [];
  for (const e of generateOrders(count, seed)) {
    out.push(JSON.stringify(e));
    if (out.length >= 10_000) {
      process.stdout.write(out.join("\n") + "\n");
      out.length = 0;
    }
  }
  if (out.length) process.stdout.write(out.join("\n") + "\n");
}
