/** What the numbers were measured on. */
import { cpus, totalmem, release } from "node:os";
import { readFileSync } from "node:fs";
import { natsServerVersion } from "../../src/log/index.js";

export interface MachineFacts {
  cpu: string;
  cores: number;
  ramGb: number;
  kernel: string;
  node: string;
  natsServer: string;
  natsClient: string;
  betterSqlite3: string;
}

function pkgVersion(name: string): string {
  try {
    const file = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

export function machineFacts(): MachineFacts {
  return {
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: cpus().length,
    ramGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    natsServer: natsServerVersion().replace(/^nats-server:\s*/, ""),
    natsClient: pkgVersion("@nats-io/jetstream"),
    betterSqlite3: pkgVersion("better-sqlite3"),
  };
}
