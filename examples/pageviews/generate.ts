/**
 * Seeded page-view generator for the pageviews example: Zipf-like page popularity, users with
 * sessions, log-normal latencies, a little disorder within the 10 s lateness and a few events
 * minutes late. Prints NDJSON envelopes `{"type":"page.view","id",...,"data":{page,user,session,latency_ms,ts}}`.
 * Usage: tsx examples/pageviews/generate.ts [count] [seed]
 */
import { seededRandom } from "../../src/processors/random.js";

/** The data of one page view. `ts` is when the user saw the page (ISO), the time windows use. */
export interface PageView {
  page: string;
  user: string;
  session: string;
  latency_ms: number;
  ts: string;
}

/** One generated event envelope. */
export interface PageViewEnvelope {
  type: "page.view";
  id: string;
  data: PageView;
}

const START = Date.parse("2024-06-01T12:00:00.000Z");
const SESSION_IDLE_MS = 30 * 60_000;
const NAMED = ["/", "/search", "/cart", "/checkout", "/about"];

/** Generates `count` page views deterministically from `seed`. */
export function* generatePageViews(count: number, seed = 1, users = 2000, products = 300): Generator<PageViewEnvelope> {
  const rnd = seededRandom(`pageviews/${seed}`);
  const sessions = new Map<string, { id: string; last: number; n: number }>();
  let clock = START;
  for (let i = 0; i < count; i++) {
    clock += Math.round(-Math.log(1 - rnd()) * 100); // ~10 views/s
    const user = `u${Math.floor(users * rnd() ** 1.5)}`;
    const rank = Math.floor((NAMED.length + products) * rnd() ** 3);
    const page = rank < NAMED.length ? NAMED[rank]! : `/products/${rank - NAMED.length}`;
    let s = sessions.get(user);
    if (!s || clock - s.last > SESSION_IDLE_MS || rnd() < 0.02) {
      s = { id: `${user}-s${(s?.n ?? 0) + 1}`, last: clock, n: (s?.n ?? 0) + 1 };
      sessions.set(user, s);
    }
    s.last = clock;
    const normal = Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
    const latency_ms = Math.max(1, Math.round(Math.exp(3.6 + 0.7 * normal)));
    // 5% arrive up to 8 s out of order (within the example's 10 s lateness); 0.2% are minutes late.
    const r = rnd();
    const ts = r < 0.002 ? clock - 60_000 - Math.floor(rnd() * 120_000) : r < 0.052 ? clock - Math.floor(rnd() * 8_000) : clock;
    yield { type: "page.view", id: `pv-${seed}-${i}`, data: { page, user, session: s.id, latency_ms, ts: new Date(ts).toISOString() } };
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const count = Number(process.argv[2] ?? 1000);
  const seed = Number(process.argv[3] ?? 1);
  let out: string[] = [];
  for (const e of generatePageViews(count, seed)) {
    out.push(JSON.stringify(e));
    if (out.length === 1000) {
      process.stdout.write(out.join("\n") + "\n");
      out = [];
    }
  }
  if (out.length) process.stdout.write(out.join("\n") + "\n");
}
