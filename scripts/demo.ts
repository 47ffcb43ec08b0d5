/**
 * The demo, driven through the `kappa` CLI as a user would: starts `kappa dev` (embedded nats-server,
 * worker, query server) on a fresh data dir, appends sample orders, deploys a processor, queries it,
 * deploys a changed version with --promote while the first keeps serving, rolls back, and stops.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { generateOrders } from "../examples/orders/generate.js";

const root = resolve(import.meta.dirname, "..");
// `--events n` makes a shorter demo (the test of the demo's output uses it).
const eventsArg = process.argv.indexOf("--events");
const EVENTS = eventsArg > 0 ? Number(process.argv[eventsArg + 1]) : 20_000;
if (!(Number.isInteger(EVENTS) && EVENTS > 0)) throw new Error(`--events ${process.argv[eventsArg + 1]} is not a positive whole number`);
const dir = mkdtempSync(join(tmpdir(), "kappa-demo-"));
const dataDir = join(dir, ".kappa");
const bin = join(root, "bin/kappa.js");

function kappa(...args: string[]): string {
  console.log(`\n$ kappa ${args.map((a) => (/[\s"*(]/.test(a) ? `'${a}'` : a)).join(" ")}`);
  const r = spawnSync(process.execPath, [bin, "--data-dir", dataDir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  // Progress lines (stderr) come before the result (stdout), as they did on the terminal.
  process.stdout.write(r.stderr.replace(/\r/g, ""));
  process.stdout.write(r.stdout);
  if (r.status !== 0) throw new Error(`kappa ${args[0]} exited with ${r.status}`);
  return r.stdout;
}

const dev = spawn(process.execPath, [bin, "--data-dir", dataDir, "--json", "dev", "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
const stopDev = () => {
  if (dev.exitCode === null) dev.kill("SIGTERM");
};
process.on("exit", stopDev);
try {
  const ready = await new Promise<{ nats: string; http: string | null; statusPage?: string }>((res, rej) => {
    let buf = "";
    dev.stdout!.on("data", (b: Buffer) => {
      buf += b.toString();
      for (const line of buf.split("\n")) {
        try {
          const j = JSON.parse(line) as { ready?: boolean; nats: string; http: string | null; statusPage?: string };
          if (j.ready) res(j);
        } catch {
          // not the ready line
        }
      }
    });
    dev.once("exit", (c) => rej(new Error(`kappa dev exited with ${c}`)));
    setTimeout(() => rej(new Error("kappa dev did not start within 30 s")), 30_000);
  });
  console.log(`kappa dev is up: NATS ${ready.nats}, data dir ${dataDir}`);
  if (ready.statusPage) console.log(`status page: ${ready.statusPage} (open it now to watch the versions build; it closes with the demo)`);

  const file = join(dir, "orders.ndjson");
  writeFileSync(file, [...generateOrders(EVENTS, 42)].map((e) => JSON.stringify(e)).join("\n") + "\n");
  kappa("append", "--file", file);
  kappa("log", "info");
  kappa("deploy", join(root, "examples/orders/orders_by_user.ts"), "--wait");
  kappa("query", "orders_by_user", "top_users", "--param", "n=5");
  const appended = kappa("--json", "append", "order.placed", '{"order":"demo-1","user":"u1","product":"p1","amount":99.5,"quantity":1}');
  const seq = (JSON.parse(appended) as { seq: number }).seq;
  kappa("query", "orders_by_user", "SELECT * FROM totals WHERE user_id = :u", "--param", "u=u1", "--min-seq", String(seq));
  kappa("deploy", join(root, "examples/orders/orders_by_user_v2.ts"), "--promote", "--wait");
  kappa("status", "orders_by_user");
  kappa("query", "orders_by_user", "top_users", "--param", "n=5");
  kappa("rollback", "orders_by_user");
  kappa("query", "orders_by_user", "top_users", "--param", "n=5");
  kappa("history", "orders_by_user");
  console.log(`\nDemo done. Everything above ran against a real nats-server in ${dataDir}.`);
} finally {
  stopDev();
  await new Promise((r) => (dev.exitCode !== null ? r(null) : dev.once("exit", r)));
  rmSync(dir, { recursive: true, force: true });
}
