import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, mkdtempSync, rmSync } from "node:fs";
import { join, delimiter } from "node:path";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { KappaError } from "../errors.js";
import { GET_NATS_SERVER_HINT, MIN_NATS_SERVER, parseServerVersion, serverTooOld, versionAtLeast } from "./serverVersion.js";

/** Where scripts/setup.sh puts the server it provides: the project's git-ignored .tools/bin. */
export const PROJECT_NATS_SERVER = fileURLToPath(new URL("../../.tools/bin/nats-server", import.meta.url));

const versions = new Map<string, string>();

/** The version a nats-server binary reports ("2.15.1"), cached per path; "unknown" when it does not run. */
export function binaryVersion(bin: string): string {
  let v = versions.get(bin);
  if (v === undefined) {
    try {
      v = parseServerVersion(execFileSync(bin, ["--version"], { encoding: "utf8", timeout: 10_000 }))?.join(".") ?? "unknown";
    } catch {
      v = "unknown";
    }
    versions.set(bin, v);
  }
  return v;
}

/**
 * Finds a nats-server of at least MIN_NATS_SERVER: KAPPA_NATS_SERVER, then PATH (and /usr/sbin, where
 * Debian puts it), then the one scripts/setup.sh unpacked into .tools/. A binary that is too old is
 * passed over; when only old ones exist, the error names the newest one found.
 */
export function findNatsServer(): string {
  const explicit = process.env.KAPPA_NATS_SERVER;
  if (explicit) {
    if (!existsSync(explicit)) throw missingServer(`KAPPA_NATS_SERVER points at ${explicit}, which does not exist`);
    const v = binaryVersion(explicit);
    if (!versionAtLeast(v, MIN_NATS_SERVER)) throw serverTooOld(v, `KAPPA_NATS_SERVER (${explicit})`);
    return explicit;
  }
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"];
  const candidates = [...dirs.filter(Boolean).map((d) => join(d, "nats-server")), PROJECT_NATS_SERVER];
  let old: { bin: string; version: string } | undefined;
  for (const bin of new Set(candidates)) {
    if (!existsSync(bin)) continue;
    const version = binaryVersion(bin);
    if (versionAtLeast(version, MIN_NATS_SERVER)) return bin;
    old ??= { bin, version };
  }
  if (old) throw serverTooOld(old.version, old.bin);
  throw missingServer("nats-server was not found on PATH, in KAPPA_NATS_SERVER or in .tools/");
}

function missingServer(what: string): KappaError {
  return new KappaError("NATS_SERVER_MISSING", what, { hint: GET_NATS_SERVER_HINT });
}

/** Options for a nats-server started by Kappa. */
export interface ServerOptions {
  /** JetStream store directory; a temporary one (removed on close) when omitted. */
  storeDir?: string;
  /** Fixed port; a free one when omitted. */
  port?: number;
  /** Forward the server's log to this stream. */
  log?: NodeJS.WritableStream;
  /** The server's name (a cluster needs distinct ones). */
  name?: string;
  /** Join a cluster: its name, this server's route port (-1: the server picks a free one), and the route ports it dials. */
  cluster?: { name: string; port: number; routes: number[] };
}

/** A nats-server child process with JetStream on loopback, stopped by its PID. */
export class NatsServer {
  private constructor(
    readonly process: ChildProcess,
    readonly url: string,
    readonly port: number,
    readonly storeDir: string,
    private readonly ownsStore: boolean,
    private readonly opts: ServerOptions,
    /** The port it takes routes from other members on (in a cluster), as it reported it. */
    readonly clusterPort?: number,
  ) {}

  /** The server's PID. */
  get pid(): number {
    return this.process.pid ?? -1;
  }

  /** Its PID as a list, like a cluster's. */
  get pids(): number[] {
    return [this.pid];
  }

  /** Starts a server and waits until it accepts connections. */
  static async start(opts: ServerOptions = {}): Promise<NatsServer> {
    const bin = findNatsServer();
    const ownsStore = !opts.storeDir;
    const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), "kappa-nats-"));
    mkdirSync(storeDir, { recursive: true });
    const portsDir = mkdtempSync(join(tmpdir(), "kappa-ports-"));
    const args = ["-js", "-a", "127.0.0.1", "-p", String(opts.port ?? -1), "-sd", storeDir, "--ports_file_dir", portsDir];
    if (opts.name) args.push("--server_name", opts.name);
    if (opts.cluster) {
      const c = opts.cluster;
      args.push("--cluster_name", c.name, "--cluster", `nats://127.0.0.1:${c.port}`, "--routes", c.routes.map((p) => `nats://127.0.0.1:${p}`).join(","));
    }
    const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    // A server we started must not outlive us, even when we exit without closing it.
    const reap = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    };
    process.once("exit", reap);
    child.once("exit", () => process.off("exit", reap));
    let output = "";
    const collect = (b: Buffer) => {
      if (output.length < 20_000) output += b.toString();
      opts.log?.write(b);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    try {
      const { port, cluster } = await waitForPorts(child, portsDir, opts.cluster !== undefined, () => output);
      return new NatsServer(child, `nats://127.0.0.1:${port}`, port, storeDir, ownsStore, opts, cluster);
    } catch (err) {
      child.kill("SIGKILL");
      throw err;
    } finally {
      rmSync(portsDir, { recursive: true, force: true });
    }
  }

  /** Starts another server on the same port and store (after a crash or stop). */
  restart(): Promise<NatsServer> {
    return NatsServer.start({ ...this.opts, storeDir: this.storeDir, port: this.port });
  }

  /** Kills the server at once (SIGKILL), as a crash would. */
  async kill(): Promise<void> {
    await this.#stop("SIGKILL");
  }

  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and removes a temporary store. */
  async close(): Promise<void> {
    await this.#stop("SIGTERM");
    if (this.ownsStore) rmSync(this.storeDir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #stop(signal: NodeJS.Signals): Promise<void> {
    const child = this.process;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill(signal);
    const t = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(t);
    // A kill that did not land would make every "survives a crash" claim hollow: say so instead.
    if (signal === "SIGKILL" && child.signalCode !== "SIGKILL") {
      throw new KappaError("NATS_SERVER_KILL", `nats-server ${child.pid} exited with ${child.exitCode} before SIGKILL reached it`, { hint: "look at its output for why it stopped" });
    }
  }
}

/** The ports the server listens on, from its ports file; with `cluster`, only once its route port is listening too. */
async function waitForPorts(child: ChildProcess, portsDir: string, cluster: boolean, output: () => string): Promise<{ port: number; cluster?: number }> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new KappaError("NATS_SERVER_FAILED", `nats-server exited with code ${child.exitCode}: ${output().trim().split("\n").slice(-3).join(" | ")}`, {
        hint: "check the store directory is writable and the port is free",
      });
    }
    for (const f of readdirSync(portsDir)) {
      if (!f.endsWith(".ports")) continue;
      try {
        const ports = JSON.parse(readFileSync(join(portsDir, f), "utf8")) as { nats?: string[]; cluster?: string[] };
        const url = ports.nats?.[0];
        const route = ports.cluster?.[0];
        if (url && !cluster) return { port: Number(new URL(url).port) };
        if (url && route) return { port: Number(new URL(url).port), cluster: Number(new URL(route).port) };
      } catch {
        // written but not complete yet
      }
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new KappaError("NATS_SERVER_FAILED", "nats-server did not report its port within 15 s", { hint: "run it by hand to see why: nats-server -js" });
}

/** The version of the server Kappa would start, for reports. */
export function natsServerVersion(): string {
  try {
    return binaryVersion(findNatsServer());
  } catch {
    return "unknown";
  }
}
