/**
 * Page-view analytics with windows and synopses: fixed memory on an endless stream, and the same
 * bytes on every replay. Windows read event time from `data.ts` and accept events up to 10 s late.
 *
 *   requests_per_minute   views and latency per page per minute (tumbling)
 *   unique_users_5m       distinct users over 5 minutes, every minute (hopping + HyperLogLog)
 *   latency_last_100      latency over the last 100 views of each page (count-sliding)
 *   session_sample        a uniform sample of 100 sessions (seeded reservoir)
 *   top_pages             the 10 most viewed pages (Count-Min sketch + top-k)
 */
import { defineProcessor, type KappaEvent, type ProcessorContext } from "../../src/processors/define.js";
import { countMinStore, distinctCount, reservoirStore } from "../../src/processors/synopses/index.js";
import { countSlidingWindow, hoppingWindow, tumblingWindow } from "../../src/processors/windows/index.js";
import type { PageView } from "./generate.js";

type View = KappaEvent<PageView>;
const eventTime = { timeField: "ts", lateness: "10s" } as const;

const requestsPerMinute = tumblingWindow<PageView>({
  name: "requests_per_minute", size: "1m", ...eventTime, retain: 24 * 60,
  key: (e) => e.data.page, value: (e) => e.data.latency_ms,
});
const uniqueUsers = hoppingWindow<PageView, string>({
  name: "unique_users_5m", size: "5m", advance: "1m", ...eventTime,
  value: (e) => e.data.user, synopsis: distinctCount({ p: 12 }),
});
const latencyLast100 = countSlidingWindow<PageView>({
  name: "latency_last_100", size: 100, key: (e) => e.data.page, value: (e) => e.data.latency_ms,
});
const sessionSample = reservoirStore<string>("session_sample", { k: 100 });
const pageCounts = countMinStore("page_counts", { epsilon: 0.001, delta: 0.01, topK: 10 });

/** Samples sessions, not views, so long sessions are not over-represented: a session counts on its first view. */
function sampleSession(e: View, ctx: ProcessorContext): void {
  const { user, session, page, ts } = e.data;
  const current = ctx.db.prepare("SELECT session FROM user_sessions WHERE user = ?").pluck().get(user);
  if (current === session) return;
  ctx.db.prepare("INSERT INTO user_sessions (user, session) VALUES (?, ?) ON CONFLICT (user) DO UPDATE SET session = excluded.session").run(user, session);
  const slot = sessionSample.update(ctx, "all", (r) => r.add(session));
  if (slot >= 0) {
    ctx.db.prepare("INSERT OR REPLACE INTO session_sample (slot, session, user, first_page, started) VALUES (?, ?, ?, ?, ?)").run(slot, session, user, page, ts);
  }
}

/** Keeps `top_pages` equal to the sketch's heavy hitters, touching only the rows that changed. */
function countPage(e: View, ctx: ProcessorContext): void {
  const { before, after } = pageCounts.update(ctx, "all", (cms) => {
    const before = new Map(cms.topK().map((h) => [h.item, h.count]));
    cms.add(e.data.page);
    return { before, after: cms.topK() };
  });
  for (const h of after) {
    if (before.get(h.item) !== h.count) ctx.db.prepare("INSERT OR REPLACE INTO top_pages (page, views) VALUES (?, ?)").run(h.item, h.count);
    before.delete(h.item);
  }
  for (const gone of before.keys()) ctx.db.prepare("DELETE FROM top_pages WHERE page = ?").run(gone);
}

export default defineProcessor({
  name: "pageviews",
  subjects: ["page.view"],
  schema: [
    requestsPerMinute.schema,
    uniqueUsers.schema,
    latencyLast100.schema,
    "CREATE TABLE user_sessions (user TEXT PRIMARY KEY, session TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE session_sample (slot INTEGER PRIMARY KEY, session TEXT NOT NULL, user TEXT NOT NULL, first_page TEXT NOT NULL, started TEXT NOT NULL)",
    "CREATE TABLE top_pages (page TEXT PRIMARY KEY, views INTEGER NOT NULL) WITHOUT ROWID",
  ],
  apply(event, ctx) {
    const e = event as View;
    requestsPerMinute.add(e, ctx);
    uniqueUsers.add(e, ctx);
    latencyLast100.add(e, ctx);
    sampleSession(e, ctx);
    countPage(e, ctx);
  },
  queries: {
    busiest_minutes: "SELECT window_start, sum(count) AS views, round(sum(sum) / sum(count), 1) AS mean_latency_ms FROM requests_per_minute GROUP BY window_start ORDER BY views DESC LIMIT :n",
    page_minutes: "SELECT window_start, count, mean, min, max, final FROM requests_per_minute WHERE key = :page ORDER BY window_start",
    unique_users: "SELECT window_start, window_end, CAST(value AS INTEGER) AS users, count AS views, final FROM unique_users_5m ORDER BY window_start",
    latency: "SELECT key AS page, count, round(mean, 1) AS mean_ms, min, max FROM latency_last_100 ORDER BY mean DESC",
    top_pages: "SELECT page, views FROM top_pages ORDER BY views DESC, page",
    late: "SELECT seq, window_name, window_start, event_time FROM kappa_late_events ORDER BY seq",
  },
});
