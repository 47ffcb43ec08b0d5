import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { leaseBucket, type LeaseValue } from "../../processors/index.js";

/** A writer lease not renewed for this long is shown as gone (the bucket's TTL drops the key without a delete the watch would see). */
const GONE_MS = 10_000;
const RETRY_MS = 2000;

/**
 * Which worker writes each version, from the workers' lease bucket (informational: shown on the status
 * page and in `GET /views`, never used to decide anything). Opens the bucket once a worker created it.
 */
export class WriterWatch {
  readonly #writers = new Map<string, { worker: string; since: string; seenAt: number }>();
  readonly #timer: NodeJS.Timeout;
  #kv: KV | undefined;
  #opening = false;
  #stop: (() => void) | undefined;

  constructor(private readonly connection: () => NatsConnection | undefined, private readonly stream: string) {
    this.#timer = setInterval(() => void this.#open(), RETRY_MS).unref();
    void this.#open();
  }

  async #open(): Promise<void> {
    const nc = this.connection();
    if (this.#kv || this.#opening || !nc || nc.isClosed()) return;
    this.#opening = true;
    try {
      const kv = await new Kvm(nc).open(leaseBucket(this.stream));
      await kv.status(); // throws when the bucket does not exist (yet)
      const w = await kv.watch();
      this.#kv = kv;
      this.#stop = () => w.stop();
      void (async () => {
        for await (const e of w) {
          const m = /^(.+)\.v(\d+)$/.exec(e.key);
          if (!m) continue;
          const key = `${m[1]}/${m[2]}`;
          if (e.operation === "PUT" && e.length > 0) {
            const v = e.json<LeaseValue>();
            this.#writers.set(key, { worker: v.worker, since: v.since, seenAt: Date.now() });
          } else this.#writers.delete(key);
        }
      })().catch(() => {
        this.#kv = undefined; // watch ended (connection closed): open again later
      });
    } catch {
      // no worker has created the bucket yet
    } finally {
      this.#opening = false;
    }
  }

  /** The worker holding the version's writer lease, if one renewed it recently. */
  writer(name: string, version: number): string | undefined {
    const w = this.#writers.get(`${name}/${version}`);
    return w && Date.now() - w.seenAt <= GONE_MS ? w.worker : undefined;
  }

  /** Every worker that writes something, with what it writes (`name vN`). */
  workers(): { worker: string; writes: string[] }[] {
    const by = new Map<string, string[]>();
    for (const [key, w] of this.#writers) {
      if (Date.now() - w.seenAt > GONE_MS) continue;
      const [name, version] = key.split("/");
      by.set(w.worker, [...(by.get(w.worker) ?? []), `${name} v${version}`]);
    }
    return [...by].map(([worker, writes]) => ({ worker, writes: writes.sort() })).sort((a, b) => a.worker.localeCompare(b.worker));
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#stop?.();
  }
}
