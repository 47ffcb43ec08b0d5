import { readFileSync } from "node:fs";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { UnavailableError, InputError, messageOf } from "../errors.js";
import { checkServerVersion } from "./serverVersion.js";
import "./transportPatch.js";

/** How to reach NATS: a URL plus the usual credentials and TLS files. */
export interface NatsOptions {
  url: string;
  creds?: string;
  user?: string;
  pass?: string;
  token?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Long-running processes reconnect forever; commands fail fast. */
  reconnectForever?: boolean;
  /** Connect timeout in ms (default 3000). */
  timeoutMs?: number;
  name?: string;
}

/** Opens a NATS connection, mapping failures to one clear error with a hint. */
export async function connectNats(opts: NatsOptions): Promise<NatsConnection> {
  const tls = opts.tlsCa || opts.tlsCert || opts.tlsKey
    ? { caFile: opts.tlsCa, certFile: opts.tlsCert, keyFile: opts.tlsKey }
    : undefined;
  let authenticator;
  if (opts.creds) {
    try {
      authenticator = credsAuthenticator(readFileSync(opts.creds));
    } catch (err) {
      throw new InputError(`cannot read credentials file ${opts.creds}: ${messageOf(err)}`, {
        hint: "pass --creds with the path of a readable .creds file",
      });
    }
  }
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: opts.url.split(",").map((s) => s.trim()),
      name: opts.name ?? "kappa",
      user: opts.user,
      pass: opts.pass,
      token: opts.token,
      authenticator,
      tls,
      timeout: opts.timeoutMs ?? 3000,
      maxReconnectAttempts: opts.reconnectForever ? -1 : 10,
      reconnectTimeWait: opts.reconnectForever ? 250 : 500,
      waitOnFirstConnect: false,
    });
  } catch (err) {
    throw new UnavailableError("NATS_UNREACHABLE", `cannot reach NATS at ${opts.url}: ${messageOf(err)}`, {
      hint: "start one with `kappa dev`, or pass --nats <url> (env NATS_URL)",
      cause: err,
    });
  }
  try {
    checkServerVersion(nc, opts.url);
  } catch (err) {
    await nc.close().catch(() => {});
    throw err;
  }
  return nc;
}
