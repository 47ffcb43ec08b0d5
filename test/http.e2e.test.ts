import { describe, it, expect } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { kappa } from "./support/cli.js";
import { DevProcess } from "./support/dev.js";

const BIN = resolve("bin/kappa.js");
const V1 = resolve("examples/orders/orders_by_user.ts");

/** `kappa serve` as a subprocess; resolves with its URL once it prints the ready line. */
async function startServe(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, "--data-dir", dataDir, "--json", "serve", "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
  try {
    const url = await new Promise<string>((res, rej) => {
      let buf = "";
      child.stdout!.on("data", (b: Buffer) => {
        buf += b.toString();
        const line = buf.split("\n").find((l) => l.includes('"ready"'));
        if (line) res((JSON.parse(line) as { http: string }).http);
      });
      child.once("exit", (c) => rej(new Error(`kappa serve exited with ${c}: ${err}`)));
      setTimeout(() => rej(new Error(`kappa serve not ready in 20 s: ${err}`)), 20_000);
    });
    return { child, url };
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
}

/** Stops a child by its PID: SIGINT, then SIGKILL after 5 s; returns its exit code. */
async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  child.kill("SIGINT");
  const t = setTimeout(() => child.kill("SIGKILL"), 5000);
  const code = await exited;
  clearTimeout(t);
  return code;
}

describe("kappa dev and kappa serve, as a user runs them", () => {
  it("dev serves HTTP; serve in another process answers appends at once with minSeq, and stops cleanly", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-http-e2e-"));
    const dataDir = join(dir, ".kappa");
    let serve: ChildProcess | undefined;
    try {
      await using dev = await DevProcess.start(dataDir);
      expect(dev.http).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(kappa(["--data-dir", dataDir, "deploy", V1, "--wait"]).code).toBe(0);
      const started = await startServe(dataDir);
      serve = started.child;
      for (const url of [dev.http!, started.url]) {
        const h = (await (await fetch(`${url}/healthz`)).json()) as { status: string };
        expect(h.status).toBe("ok");
      }
      for (let i = 0; i < 2; i++) {
        const a = kappa(["--data-dir", dataDir, "--json", "append", "order.placed", JSON.stringify({ order: `e${i}`, user: `e2e_${i}`, product: "p", amount: 5, quantity: 1 })]);
        expect(a.code).toBe(0);
        const seq = (JSON.parse(a.stdout) as { seq: number }).seq;
        const res = await fetch(`${started.url}/views/orders_by_user/query`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ sql: "SELECT user_id, orders FROM totals WHERE user_id = :u", params: { u: `e2e_${i}` }, minSeq: seq }),
        });
        expect(res.status).toBe(200);
        expect(await res.json()).toMatchObject({ version: 1, seq, rows: [{ user_id: `e2e_${i}`, orders: 1 }] });
      }
      expect(await stop(serve)).toBe(0);
    } finally {
      if (serve) await stop(serve);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
