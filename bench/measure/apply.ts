/**
 * 2. Raw apply: the orders_by_user logic applied from memory into SQLite in batches with a checkpoint row
 *    (the other ceiling), with the events pre-parsed and with decode + JSON.parse counted.
 * 3. Naive baseline: what a user would hand-roll — a durable pull consumer, one SQLite transaction and
 *    one ack per event.
 */
import { join } from "node:path";
import Database, { type Database as Db } from "better-sqlite3";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { DEFAULT_LIMITS } from "../../src/log/index.js";
import { SPEC, scratch, startServer, connect, fill, loadCorpus } from "../lib/env.js";
import { withScope } from "../lib/scope.js";
import { Progress } from "../lib/progress.js";
import { rate } from "../lib/stats.js";

const UPSERT = "INSERT INTO totals (user_id, orders, amount) VALUES (?, 1, ?) ON CONFLICT (user_id) DO UPDATE SET orders = orders + 1, amount = round(amount + excluded.amount, 2)";

/** A view-like SQLite file: WAL, synchronous=NORMAL (as Kappa's view files), the processor's table and a checkpoint row. */
function openView(name: string): Db {
  const db = new Database(join(scratch, `${name}-${process.hrtime.bigint()}.sqlite`));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec("CREATE TABLE totals (user_id TEXT PRIMARY KEY, orders INTEGER NOT NULL, amount REAL NOT NULL)");
  db.exec("CREATE TABLE checkpoint (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL)");
  db.exec("INSERT INTO checkpoint VALUES (1, 0)");
  return db;
}

interface Order {
  user: string;
  amount: number;
}

export interface ApplyResult {
  events: number;
  batch: number;
  /** events/s, data already parsed in memory: SQLite only. */
  rawApply: number;
  /** events/s, including TextDecoder + JSON.parse of each payload. */
  rawApplyWithParse: number;
}

/** Applies the corpus in batches of DEFAULT_LIMITS.maxEvents, as the worker batches a replay. */
export async function measureApply(corpus: string, events: number): Promise<ApplyResult> {
  const loaded = loadCorpus(corpus);
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const types = loaded.map((e) => e.type);
  const bytes = loaded.map((e) => enc.encode(e.json));
  const parsed = loaded.map((e) => JSON.parse(e.json) as Order);
  loaded.length = 0;
  const batch = DEFAULT_LIMITS.maxEvents;
  const run = (label: string, data: (i: number) => Order): number => {
    const db = openView(label);
    const upsert = db.prepare(UPSERT);
    const cp = db.prepare("UPDATE checkpoint SET seq = ? WHERE id = 1 AND seq = ?");
    const bar = new Progress(label, events);
    let last = 0;
    const tx = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        if (types[i] !== "order.placed") continue;
        const d = data(i);
        upsert.run(d.user, d.amount);
      }
      if (cp.run(to, last).changes !== 1) throw new Error("checkpoint moved");
      last = to;
    });
    const t0 = performance.now();
    for (let i = 0; i < events; i += batch) {
      tx(i, Math.min(events, i + batch));
      if ((i / batch) % 20 === 0) bar.update(i);
    }
    const ms = performance.now() - t0;
    bar.update(events);
    bar.stop();
    db.close();
    return ms;
  };
  const rawMs = run("raw apply", (i) => parsed[i]!);
  const withParseMs = run("apply+parse", (i) => JSON.parse(dec.decode(bytes[i]!)) as Order);
  return { events, batch, rawApply: rate(events, rawMs), rawApplyWithParse: rate(events, withParseMs) };
}

export interface NaiveResult {
  events: number;
  /** events/s with Kappa's SQLite settings (WAL, synchronous=NORMAL): the baseline the target uses. */
  naive: number;
  /** events/s with SQLite's defaults (rollback journal, synchronous=FULL: an fsync per event), over fewer events. */
  naiveDefaults: number;
  naiveDefaultsEvents: number;
}

/** One hand-rolled consumer: `for await` over a durable pull consumer, a transaction and an ack per event. */
async function naiveRun(nc: NatsConnection, name: string, db: Db, count: number): Promise<number> {
  const jsm = await jetstreamManager(nc);
  await jsm.consumers.add(SPEC.stream, { durable_name: name, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
  const consumer = await jetstream(nc).consumers.get(SPEC.stream, name);
  const upsert = db.prepare(UPSERT);
  const cp = db.prepare("UPDATE checkpoint SET seq = ? WHERE id = 1");
  const applyOne = db.transaction((type: string, d: Order, seq: number) => {
    if (type === "events.order.placed") upsert.run(d.user, d.amount);
    cp.run(seq);
  });
  const bar = new Progress(name, count);
  const t0 = performance.now();
  const msgs = await consumer.consume();
  let n = 0;
  for await (const m of msgs) {
    applyOne(m.subject, m.json<Order>(), m.seq);
    m.ack();
    if (++n % 1000 === 0) bar.update(n);
    if (n >= count) break;
  }
  const ms = performance.now() - t0;
  bar.update(n);
  bar.stop();
  await msgs.close();
  return rate(n, ms);
}

/** The hand-rolled consumer over `events` events (capped by the caller: it is slow). */
export async function measureNaive(corpus: string, events: number): Promise<NaiveResult> {
  return withScope(async (scope) => {
    const server = await startServer(scope);
    const nc = await connect(scope, server.url);
    await fill(nc, corpus, events);
    const db = openView("naive");
    scope.defer("naive db", () => void db.close());
    const naive = await naiveRun(nc, "naive", db, events);
    const plain = new Database(join(scratch, `naive-defaults-${process.hrtime.bigint()}.sqlite`));
    scope.defer("naive-defaults db", () => void plain.close());
    plain.exec("CREATE TABLE totals (user_id TEXT PRIMARY KEY, orders INTEGER NOT NULL, amount REAL NOT NULL); CREATE TABLE checkpoint (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL); INSERT INTO checkpoint VALUES (1, 0);");
    const fewer = Math.min(events, 5000);
    const naiveDefaults = await naiveRun(nc, "naive-defaults", plain, fewer);
    return { events, naive, naiveDefaults, naiveDefaultsEvents: fewer };
  });
}
