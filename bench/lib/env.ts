/** Fresh servers, connections and the generated event corpus that every stage works on. */
import { createWriteStream, closeSync, openSync, readSync, mkdtempSync, mkdirSync, rmSync, existsSync, renameSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { once } from "node:events";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { NatsServer, connectNats, ensureStream, DEFAULT_STREAM, type OutgoingEvent } from "../../src/log/index.js";
import { generateOrders } from "../../examples/orders/generate.js";
import { rawPublish } from "./rawPublish.js";
import { trackDir, trackPid, untrackPid, type Scope } from "./scope.js";
import { Progress } from "./progress.js";

export const SPEC = DEFAULT_STREAM;

/**
 * The run's scratch directory (corpus files, data dirs; several GB at 10M events), under bench/.work
 * (git-ignored) rather than a possibly small /tmp; removed at the end of the run.
 */
const work = fileURLToPath(new URL("../.work/", import.meta.url));
mkdirSync(work, { recursive: true });
export const scratch = mkdtempSync(join(work, "run-"));
trackDir(scratch);
export function removeScratch(): void {
  rmSync(scratch, { recursive: true, force: true });
}

/** A fresh nats-server with JetStream on a temp store, stopped by PID when the scope ends. */
export async function startServer(scope: Scope): Promise<NatsServer> {
  const server = await NatsServer.start();
  trackPid(server.pid);
  trackDir(server.storeDir);
  scope.defer(`nats-server ${server.pid}`, async () => {
    await server.close();
    untrackPid(server.pid);
  });
  return server;
}

/** A connection closed when the scope ends. */
export async function connect(scope: Scope, url: string, name = "kappa-bench"): Promise<NatsConnection> {
  const nc = await connectNats({ url, name, timeoutMs: 5000 });
  scope.defer(`connection ${name}`, () => nc.close());
  return nc;
}

/**
 * Writes `count` generated order events (seed 1) to a tab-separated file `type \t id \t json`, once per size.
 * The generator is slow (≈ 175k/s), so stages read the file instead of generating again.
 */
export async function corpusFile(count: number): Promise<string> {
  const path = join(scratch, `orders-${count}.tsv`);
  if (existsSync(path)) return path;
  const out = createWriteStream(path + ".tmp");
  const bar = new Progress("generate", count);
  let buf: string[] = [];
  let i = 0;
  for (const e of generateOrders(count, 1)) {
    buf.push(`${e.type}\t${e.id}\t${JSON.stringify(e.data)}`);
    if (buf.length === 10_000) {
      if (!out.write(buf.join("\n") + "\n")) await once(out, "drain");
      buf = [];
      bar.update((i += 10_000));
    }
  }
  if (buf.length) out.write(buf.join("\n") + "\n");
  out.end();
  await once(out, "finish");
  bar.stop();
  renameSync(path + ".tmp", path);
  return path;
}

/** Streams the corpus file line by line without holding it in memory. */
export function* readCorpus(path: string): Generator<OutgoingEvent> {
  const fd = openSync(path, "r");
  const chunk = Buffer.alloc(4 << 20);
  let rest = "";
  try {
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      const text = rest + chunk.toString("utf8", 0, n);
      const lines = text.split("\n");
      rest = lines.pop()!;
      for (const line of lines) yield toEvent(line);
    }
    if (rest) yield toEvent(rest);
  } finally {
    closeSync(fd);
  }
}

function toEvent(line: string): OutgoingEvent {
  const a = line.indexOf("\t");
  const b = line.indexOf("\t", a + 1);
  return { type: line.slice(0, a), id: line.slice(a + 1, b), json: line.slice(b + 1) };
}

/** The whole corpus in memory (for stages that must not count input costs). */
export function loadCorpus(path: string): OutgoingEvent[] {
  return [...readCorpus(path)];
}

/** Creates the stream and appends the corpus with the raw pipelined loop; returns the last sequence. */
export async function fill(nc: NatsConnection, corpus: string, count: number, label = "fill"): Promise<number> {
  await ensureStream(nc, SPEC);
  const bar = new Progress(label, count);
  const r = await rawPublish(nc, SPEC.prefix, readCorpus(corpus), { onProgress: (n) => bar.update(n) });
  bar.stop();
  if (r.count !== count) throw new Error(`filled ${r.count} events, expected ${count}`);
  return r.lastSeq;
}
