import { describe, it, expect } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type Browser, type BrowserServer, type Page } from "playwright-core";
import { TestEnv } from "./support/env.js";
import { cliContext } from "./support/cli.js";
import { pidAlive } from "./support/dev.js";
import { WorkerProcess } from "./support/workerProcess.js";
import { deployModule } from "../src/processors/index.js";
import { startHttpServer } from "../src/cli/http/index.js";
import { gatherStatus } from "../src/cli/status.js";
import { generateOrders } from "../examples/orders/generate.js";

const CHROMIUM = "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
// Playwright gives every launch a fresh temporary --user-data-dir of its own (it refuses one in args).
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const V1 = resolve("examples/orders/orders_by_user.ts");
const V2 = resolve("examples/orders/orders_by_user_v2.ts");
/** Where the test leaves its screenshot for a person to look at (git-ignored). */
const SCREENSHOT = resolve("test-results/status-page.png");

if (!HAVE_CHROMIUM) console.warn(`statuspage tests skipped: ${CHROMIUM} is not installed (bash scripts/setup-browser.sh)`);

/** Headless Chromium as a browser server, so its PID is known and it is killed even when closing fails. */
async function withBrowser(fn: (b: Browser) => Promise<void>): Promise<void> {
  const server: BrowserServer = await chromium.launchServer({ executablePath: CHROMIUM, args: ARGS, headless: true });
  const pid = server.process().pid;
  try {
    const browser = await chromium.connect(server.wsEndpoint());
    try {
      await fn(browser);
    } finally {
      await browser.close().catch(() => {});
    }
  } finally {
    await server.close().catch(() => {});
    if (pid && pidAlive(pid)) process.kill(pid, "SIGKILL");
  }
}

const cell = (version: number, cls: string, processor = "orders_by_user") => `section[data-processor="${processor}"] tr[data-version="${version}"] td.${cls}`;
const num = (s: string | null) => Number((s ?? "").replaceAll(",", ""));

/** Processors that show the page's other panels: one halts on refunds, one skips them, one builds slowly. */
function extraProcessors(dir: string): string[] {
  const mod = (name: string, body: string) => {
    const path = join(dir, `${name}.ts`);
    writeFileSync(path, `export default { name: "${name}", subjects: ["order.*"], schema: ["CREATE TABLE n (k INTEGER PRIMARY KEY, c INTEGER)"], ${body} };\n`);
    return path;
  };
  const count = `ctx.db.prepare("INSERT INTO n VALUES (1, 1) ON CONFLICT (k) DO UPDATE SET c = c + 1").run();`;
  return [
    mod("fragile", `on: { "order.placed": (e, ctx) => { ${count} }, "order.refunded": () => { throw new Error("refunds are not supported"); } }`),
    mod("picky", `onError: "skip", on: { "order.placed": (e, ctx) => { ${count} }, "order.refunded": () => { throw new Error("skipped refund"); } }`),
    // Sleeps 1 ms per event (without spinning the CPU): deployed late, it builds for seconds, with a progress bar and an ETA.
    mod("slow_rebuild", `apply: (e, ctx) => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); ${count} }`),
  ];
}

/** Appends a few orders every 200 ms until stopped. */
function keepAppending(env: TestEnv): { stop: () => Promise<void> } {
  let running = true;
  let seed = 1000;
  const loop = (async () => {
    while (running) {
      await env.append([...generateOrders(10, seed++)].map((e) => ({ ...e, id: `${e.id}-${seed}` })));
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return { stop: async () => { running = false; await loop; } };
}

/** What the events/s chart of a processor holds and has drawn. */
async function chartState(page: Page, processor: string) {
  return page.evaluate((name) => {
    const u = (window as unknown as { kappaCharts: Record<string, { eps: { data: (number | null)[][]; ctx: CanvasRenderingContext2D } }> }).kappaCharts[name]?.eps;
    if (!u) return null;
    const t = u.data[0]!;
    const v1 = u.data[1]!;
    const canvas = u.ctx.canvas;
    const px = u.ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let blue = 0; // pixels of v1's line colour (#3d5afe), give or take anti-aliasing
    for (let i = 0; i < px.length; i += 4) if (Math.abs(px[i]! - 61) < 40 && Math.abs(px[i + 1]! - 90) < 40 && px[i + 2]! > 200 && px[i + 3]! > 100) blue++;
    return { points: t.length, lastT: t.at(-1) ?? 0, lastEps: v1.at(-1) ?? null, maxEps: Math.max(0, ...v1.map((x) => x ?? 0)), blue, image: canvas.toDataURL() };
  }, processor);
}

/** One Prometheus sample's value. */
function metric(text: string, name: string, labels: string): number {
  const m = new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, "m").exec(text);
  if (!m) throw new Error(`no ${name}{${labels}} in /metrics`);
  return Number(m[1]);
}

describe.skipIf(!HAVE_CHROMIUM)(`the status page in headless Chromium${HAVE_CHROMIUM ? "" : ` (skipped: ${CHROMIUM} not installed)`}`, () => {
  it("draws events/s and lag that move while events arrive, with progress, failures and dead letters; its numbers agree with kappa status and /metrics", async () => {
    await using env = await TestEnv.start();
    const dir = mkdtempSync(join(tmpdir(), "kappa-page-"));
    try {
      await env.appendOrders(300, 41);
      await using worker = WorkerProcess.start(env.server.url, env.dataDir.root);
      await deployModule(env.nc, env.spec, V1);
      await env.waitForRecord("orders_by_user", (r) => r.live === 1);
      await deployModule(env.nc, env.spec, V2);
      const [fragile, picky, slow] = extraProcessors(dir);
      for (const m of [fragile!, picky!]) await deployModule(env.nc, env.spec, m);
      await env.waitForRecord("orders_by_user", (r) => r.versions["2"]?.state === "caught-up");
      await env.waitForRecord("fragile", (r) => r.versions["1"]?.state === "failed");
      await using server = await startHttpServer(cliContext(env), { port: 0 });
      const appending = keepAppending(env);
      try {
        await withBrowser(async (browser) => {
          const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
          const errors: string[] = [];
          page.on("pageerror", (e) => errors.push(e.message));
          page.on("requestfailed", (r) => errors.push(`${r.url()} failed`));
          await page.goto(server.url + "/");
          await page.waitForSelector(cell(2, "checkpoint"), { timeout: 10_000 }).catch((err: Error) => {
            throw new Error(`${err.message}; errors on the page: ${errors.join("; ") || "none"}`);
          });
          expect(await page.title()).toMatch(/Kappa/);
          const rows = await page.$$eval('section[data-processor="orders_by_user"] tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ""));
          expect(rows[0]).toMatch(/★v1live/);
          expect(rows[1]).toMatch(/^v2caught-up/);

          // The chart has drawn points, and they move while events arrive.
          await page.waitForFunction(() => {
            const u = (window as unknown as { kappaCharts: Record<string, { eps: { data: (number | null)[][] } }> }).kappaCharts.orders_by_user?.eps;
            return u ? u.data[1]!.filter((x) => (x ?? 0) > 0).length >= 2 : false;
          }, undefined, { timeout: 15_000 }).catch(async (err: Error) => {
            const s = await chartState(page, "orders_by_user");
            await page.screenshot({ path: SCREENSHOT, fullPage: true });
            throw new Error(`${err.message}; chart: ${JSON.stringify({ ...s, image: undefined })}; page errors: ${errors.join("; ") || "none"}; worker: ${worker.log.join("").slice(-500)}`);
          });
          const a = (await chartState(page, "orders_by_user"))!;
          await page.waitForFunction((t) => {
            const u = (window as unknown as { kappaCharts: Record<string, { eps: { data: number[][] } }> }).kappaCharts.orders_by_user?.eps;
            return (u?.data[0]!.at(-1) ?? 0) >= t + 2;
          }, a.lastT, { timeout: 10_000 });
          const b = (await chartState(page, "orders_by_user"))!;
          expect(b.points).toBeGreaterThan(a.points);
          expect(b.maxEps).toBeGreaterThan(0);
          expect(b.blue).toBeGreaterThan(20);
          expect(b.image).not.toBe(a.image);

          // One moment on the page, then kappa status, then /metrics: each agrees with itself, and none goes back.
          const onPage = await page.evaluate(() => {
            const t = (cls: string) => document.querySelector(`section[data-processor="orders_by_user"] tr[data-version="1"] td.${cls}`)?.textContent ?? "";
            return { cp: t("checkpoint"), head: t("head"), lag: t("lag"), eps: t("eps") };
          });
          const page1 = { cp: num(onPage.cp), head: num(onPage.head), lag: num(onPage.lag), eps: num(onPage.eps) };
          const st = (await gatherStatus(cliContext(env), "orders_by_user")).processors[0]!.versions[0]!;
          const text = await (await fetch(server.url + "/metrics")).text();
          const l = 'processor="orders_by_user",version="1"';
          const met = { cp: metric(text, "kappa_view_checkpoint_sequence", l), head: metric(text, "kappa_view_log_head_sequence", l), lag: metric(text, "kappa_view_lag_events", l), eps: metric(text, "kappa_view_events_per_second", l) };
          for (const [where, n] of [["page", page1], ["kappa status", { cp: st.checkpoint!, head: st.logHead!, lag: st.lag!, eps: st.eventsPerSec! }], ["/metrics", met]] as const) {
            expect(n.cp, `${where}: checkpoint ≤ head`).toBeLessThanOrEqual(n.head);
            expect(n.lag, `${where}: lag = head − checkpoint`).toBe(n.head - n.cp);
            expect(n.eps, `${where}: events/s while events arrive`).toBeGreaterThan(0);
          }
          // Checkpoints only move forward, and no one shows a head the log has not reached.
          expect(st.checkpoint!).toBeGreaterThanOrEqual(page1.cp);
          expect(met.cp).toBeGreaterThanOrEqual(st.checkpoint!);
          const truth = (await env.jsm.streams.info(env.spec.stream)).state.last_seq;
          for (const head of [page1.head, st.logHead!, met.head]) expect(head).toBeLessThanOrEqual(truth);

          // The workers: the one worker writes every version, and each row names it.
          await page.waitForSelector("#workers tr[data-worker]", { timeout: 10_000 });
          const workers = await page.$$eval("#workers tbody tr", (trs) => trs.map((tr) => tr.textContent ?? ""));
          expect(workers).toHaveLength(1);
          expect(workers[0]).toMatch(/orders_by_user v1, orders_by_user v2/);
          const writer = await page.getAttribute("#workers tr[data-worker]", "data-worker");
          expect(await page.textContent(`${cell(1, "checkpoint").replace(" td.checkpoint", "")} .writer`)).toBe(writer);

          // The other panels: a building version's progress and ETA, a failure with its event, dead letters.
          await env.appendOrders(4000, 77);
          await deployModule(env.nc, env.spec, slow!);
          await page.waitForSelector('section[data-processor="slow_rebuild"] tr[data-version="1"] .progress .eta', { timeout: 10_000 }).catch(async (err: Error) => {
            await page.screenshot({ path: SCREENSHOT, fullPage: true });
            throw new Error(`${err.message}; slow_rebuild: ${await (await fetch(server.url + "/views/slow_rebuild")).text()}; worker: ${worker.log.join("")}`);
          });
          expect(await page.textContent('section[data-processor="fragile"] .failures')).toMatch(/^v1 failed at event \d+ \(order\.refunded\): fragile threw: refunds are not supported — deploy a fix/);
          await page.waitForFunction((sel) => Number(document.querySelector(sel)?.textContent?.replaceAll(",", "")) > 0, cell(1, "dead-letters", "picky"), { timeout: 10_000 });

          mkdirSync(resolve("test-results"), { recursive: true });
          await page.screenshot({ path: SCREENSHOT, fullPage: true });
          console.log(`status page screenshot: ${SCREENSHOT}`);
          expect(errors).toEqual([]);
        });
      } finally {
        await appending.stop();
      }
      void worker;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("works behind a token: /?token= once, then the page's event stream authenticates by cookie", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(100, 43);
    await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    await using server = await startHttpServer(cliContext(env), { port: 0, token: "page-token-0123456789" });
    await withBrowser(async (browser) => {
      const page = await browser.newPage();
      const denied = await page.goto(server.url + "/");
      expect(denied?.status()).toBe(401);
      await page.goto(server.url + "/?token=page-token-0123456789");
      await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === "100", cell(1, "checkpoint"), { timeout: 10_000 });
    });
  });
});
