import { describe, it, expect } from "vitest";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { chromium, type Browser, type BrowserServer } from "playwright-core";
import { TestEnv } from "./support/env.js";
import { cliContext } from "./support/cli.js";
import { pidAlive } from "./support/dev.js";
import { deployModule } from "../src/processors/index.js";
import { startHttpServer } from "../src/cli/http/index.js";

const CHROMIUM = "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
const V1 = resolve("examples/orders/orders_by_user.ts");
const V2 = resolve("examples/orders/orders_by_user_v2.ts");
const SCREENSHOT = "/tmp/kappa-status-page.png";

if (!HAVE_CHROMIUM) console.warn(`statuspage tests skipped: ${CHROMIUM} is not installed (apt-get install -y chromium)`);

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

const cell = (version: number, cls: string) => `section[data-processor="orders_by_user"] tr[data-version="${version}"] td.${cls}`;

describe.skipIf(!HAVE_CHROMIUM)(`the status page in headless Chromium${HAVE_CHROMIUM ? "" : ` (skipped: ${CHROMIUM} not installed)`}`, () => {
  it("lists every version with its state and live marker, and its numbers move after appends", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(300, 41);
    await env.startWorker();
    await deployModule(env.nc, env.spec, V1);
    await env.waitForRecord("orders_by_user", (r) => r.live === 1);
    await deployModule(env.nc, env.spec, V2);
    await env.waitForRecord("orders_by_user", (r) => r.versions["2"]?.state === "caught-up");
    await using server = await startHttpServer(cliContext(env), { port: 0 });

    await withBrowser(async (browser) => {
      const page = await browser.newPage({ viewport: { width: 1200, height: 520 } });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(server.url + "/");
      await page.waitForSelector(cell(2, "checkpoint"), { timeout: 10_000 }).catch((err: Error) => {
        throw new Error(`${err.message}; errors on the page: ${errors.join("; ") || "none"}`);
      });
      expect(await page.title()).toMatch(/Kappa/);
      const rows = await page.$$eval('section[data-processor="orders_by_user"] tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ""));
      expect(rows).toHaveLength(2);
      expect(rows[0]).toMatch(/★v1live/);
      expect(rows[1]).toMatch(/^v2caught-up/);
      expect(await page.textContent('section[data-processor="orders_by_user"] h2')).toMatch(/live: v1/);
      await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === "300", cell(1, "checkpoint"));
      expect(await page.textContent("#conn")).toMatch(/live/);
      expect(await page.textContent("#nats")).toMatch(/NATS ok/);

      await env.appendOrders(1200, 42);
      for (const v of [1, 2]) await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === "1,500", cell(v, "checkpoint"), { timeout: 10_000 });
      await page.waitForFunction(() => document.getElementById("head")?.textContent === "1,500", undefined, { timeout: 10_000 });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(errors).toEqual([]);
    });
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
