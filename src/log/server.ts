import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, mkdtempSync, rmSync } from "node:fs";
import { join, delimiter } from "node:path";
import { tmpdir } from "node:os";
import { KappaError } from "../errors.js";

/** Finds the nats-server binary: KAPPA_NATS_SERVER, then PATH, then /usr/sbin and /usr/bin (Debian puts it in /usr/sbin). */
export function findNatsServer(): string {
  const explicit = process.env.KAPPA_NATS_SERVER;
  if (explicit) {
    if (!existsSync(explicit)) throw missingServer(`KAPPA_NATS_SERVER points at ${explicit}, which does not exist`);
    return explicit;
  }
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"];
  for (const d of dirs) {
    const p = join(d, "nats-server");
    if (d && existsSync(p)) return p;
  }
  throw missingServer("nats-server was not found on PATH");
}

function missingServer(what: string): KappaError {
  return new KappaError("NATS_SERVER_MISSING", what, {
    hint: "install it with `sudo apt-get install -y nats-server` (Debian/Ubuntu), or set KAPPA_NATS_SERVER to the binary",
  });
}

/** Options for a nats-server started by Kappa. */
export interface ServerOptions {
  /** JetStream store directory; a temporary one (removed on close) when omitted. */
  storeDir?: string;
  /** Fixed port; a free one when omitted. */
  port?: number;
  /** Forward the server's log to this stream. */
  log?: NodeJS.WritableStream;
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
  ) {}

  /** The server's PID. */
  get pid(): number {
    return this.process.pid ?? -1;
  }

  /** Starts a server and waits until it accepts connections. */
  static async start(opts: ServerOptions = {}): Promise<NatsServer> {
    const bin = findNatsServer();
    const ownsStore = !opts.storeDir;
    const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), "kappa-nats-"));
    mkdirSync(storeDir, { recursive: true });
    const portsDir = mkdtempSync(join(tmpdir(), "kappa-ports-"));
    const args = ["-js", "-a", "127.0.0.1", "-p", String(opts.port ?? -1), "-sd", storeDir, "--ports_file_dir", portsDir];
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
      const port = await waitForPort(child, portsDir, () => output);
      const server = new NatsServer(child, `nats://127.0.0.1:${port}`, port, storeDir, ownsStore, opts);
      return server;
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
  }
}

async function waitForPort(child: ChildProcess, portsDir: string, output: () => string): Promise<number> {
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
        const ports = JSON.parse(readFileSync(join(portsDir, f), "utf8")) as { nats?: string[] };
        const url = ports.nats?.[0];
        if (url) return Number(new URL(url).port);
      } catch {
        // written but not complete yet
      }
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new KappaError("NATS_SERVER_FAILED", "nats-server did not report its port within 15 s", { hint: "run it by hand to see why: nats-server -js" });
}

/** The installed server's version, for reports. */
export function natsServerVersion(): string {
  try {
    return execFileSync(findNatsServer(), ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}
