import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { NatsConnection } from "@nats-io/nats-core";
import { connectNats, type NatsOptions, type StreamSpec } from "../log/index.js";
import { DataDir } from "../views/index.js";
import { InputError } from "../errors.js";

/** The global flags every command takes. */
export interface GlobalOptions {
  nats?: string;
  dataDir: string;
  stream: string;
  prefix: string;
  json?: boolean;
  creds?: string;
  user?: string;
  password?: string;
  natsToken?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** NATS client certificate and key; win over tlsCert/tlsKey (which `kappa serve` takes for HTTPS). */
  natsTlsCert?: string;
  natsTlsKey?: string;
  /** Idempotency window of a stream Kappa creates, in seconds. */
  duplicateWindow?: string;
  /** Replicas of what Kappa creates (stream, catalog, code, outputs). */
  replicas?: string;
  /** Accept an existing stream that is not append-only. */
  allowUnsafeLog?: boolean;
  /** HTTP port, for the commands that serve. */
  port?: string;
}

/** What a command works with: the data dir, the stream and how to reach NATS. */
export class CliContext {
  readonly dataDir: DataDir;
  readonly spec: StreamSpec;
  readonly json: boolean;
  #nc: NatsConnection | undefined;

  constructor(readonly opts: GlobalOptions) {
    this.dataDir = new DataDir(opts.dataDir);
    const dup = opts.duplicateWindow === undefined ? undefined : Number(opts.duplicateWindow);
    if (dup !== undefined && !(dup > 0)) throw new InputError(`--duplicate-window ${opts.duplicateWindow} is not a positive number of seconds`, { hint: "e.g. --duplicate-window 600" });
    const replicas = opts.replicas === undefined || opts.replicas === "" ? undefined : Number(opts.replicas);
    if (replicas !== undefined && !(Number.isInteger(replicas) && replicas >= 1 && replicas <= 5)) {
      throw new InputError(`--replicas ${opts.replicas} is not a whole number from 1 to 5`, { hint: "JetStream keeps 1 to 5 copies; use 3 on a 3-server cluster (env KAPPA_REPLICAS)" });
    }
    this.spec = { stream: opts.stream, prefix: opts.prefix, ...(dup ? { duplicateWindowMs: dup * 1000 } : {}), ...(replicas ? { replicas } : {}), ...(opts.allowUnsafeLog ? { allowUnsafeLog: true } : {}) };
    this.json = opts.json === true;
  }

  /** From a commander command: its options merged with the program's. */
  static of(cmd: Command): CliContext {
    return new CliContext(cmd.optsWithGlobals() as GlobalOptions);
  }

  /** The NATS URL: --nats, then NATS_URL, then the URL `kappa dev` wrote to the data dir, then the default. */
  get natsUrl(): string {
    if (this.opts.nats) return this.opts.nats;
    if (process.env.NATS_URL) return process.env.NATS_URL;
    try {
      return readFileSync(this.dataDir.natsUrlFile, "utf8").trim();
    } catch {
      return "nats://127.0.0.1:4222";
    }
  }

  natsOptions(extra: Partial<NatsOptions> = {}): NatsOptions {
    const o = this.opts;
    return {
      url: this.natsUrl,
      ...(o.creds ? { creds: o.creds } : {}),
      ...(o.user ? { user: o.user } : {}),
      ...(o.password ? { pass: o.password } : {}),
      ...(o.natsToken ? { token: o.natsToken } : {}),
      ...(o.tlsCa ? { tlsCa: o.tlsCa } : {}),
      ...(o.natsTlsCert ?? o.tlsCert ? { tlsCert: (o.natsTlsCert ?? o.tlsCert)! } : {}),
      ...(o.natsTlsKey ?? o.tlsKey ? { tlsKey: (o.natsTlsKey ?? o.tlsKey)! } : {}),
      ...extra,
    };
  }

  /** Connects once per command. */
  async nats(extra: Partial<NatsOptions> = {}): Promise<NatsConnection> {
    this.#nc ??= await connectNats(this.natsOptions(extra));
    return this.#nc;
  }

  /** The connection if one was opened. */
  get connection(): NatsConnection | undefined {
    return this.#nc;
  }

  async close(): Promise<void> {
    await this.#nc?.close().catch(() => {});
  }
}
