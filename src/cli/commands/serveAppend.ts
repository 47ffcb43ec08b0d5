import type { Command } from "commander";
import { InputError } from "../../errors.js";
import type { HttpServerOptions } from "../http/index.js";

/** The `kappa serve` flags of `POST /events`, as commander hands them over. */
export interface AppendFlags {
  allowAppend?: boolean;
  idField?: string;
  appendBodyLimit: string;
  appendMaxEvents: string;
  appendMaxInflight: string;
  appendRate: string;
}

/** Parses a whole-number flag within bounds. */
function intFlag(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) throw new InputError(`${name} ${text} is not a whole number from ${min} to ${max}`, { hint: `e.g. ${name} ${Math.max(min, Math.min(max, 1000))}`, code: "BAD_FLAG" });
  return n;
}

/** Adds the flags that let producers append over HTTP. */
export function appendOptions(cmd: Command): Command {
  return cmd
    .option("--allow-append", "take events over HTTP: POST /events and /events/:type (needs --token, also on loopback)")
    .option("--id-field <field>", "with --allow-append: take each event's idempotency key from this data field (dots for nested)")
    .option("--append-body-limit <bytes>", "largest POST /events body", "1048576")
    .option("--append-max-events <n>", "most events per request (each request is stored all-or-nothing; at most 1000)", "1000")
    .option("--append-max-inflight <events>", "events being published at once over all requests; beyond it 429 with Retry-After", "10000")
    .option("--append-rate <events/s>", "sustained events per second over all requests; beyond it 429 with Retry-After (0: no limit)", "0");
}

/** The server's append settings from those flags. */
export function appendSettings(flags: AppendFlags): NonNullable<HttpServerOptions["append"]> {
  return {
    allow: flags.allowAppend === true,
    ...(flags.idField ? { idField: flags.idField } : {}),
    bodyLimit: intFlag("--append-body-limit", flags.appendBodyLimit, 1024, 64 * 1024 * 1024),
    maxEvents: intFlag("--append-max-events", flags.appendMaxEvents, 1, 1000),
    limits: { maxInFlight: intFlag("--append-max-inflight", flags.appendMaxInflight, 1, 10_000_000), ratePerSec: intFlag("--append-rate", flags.appendRate, 0, 100_000_000) },
  };
}
