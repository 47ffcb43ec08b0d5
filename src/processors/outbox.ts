import type { Database, Statement } from "better-sqlite3";
import type { NatsConnection } from "@nats-io/nats-core";
import { messageOf } from "../errors.js";
import { PipelinedPublisher, TIME_HEADER } from "../log/index.js";
import { ensureOutputStream } from "./derived.js";

interface OutboxRow {
  seq: number;
  idx: number;
  type: string;
  time: string;
  data: string;
}

/**
 * Publishes what ctx.emit wrote to the outbox, in order, each with an idempotency key derived from
 * (processor, version, input sequence, index), and deletes rows once JetStream acknowledged them.
 * A crash between publish and delete republishes with the same key, which the stream drops as a duplicate.
 */
export class OutboxPublisher {
  readonly #select: Statement;
  readonly #delete: Statement;
  readonly #count: Statement;
  readonly #pub: PipelinedPublisher;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  pending = 0;

  constructor(db: Database, private readonly nc: NatsConnection, private readonly output: { stream: string; prefix: string }, private readonly keyPrefix: string, private readonly onTrouble: (m: string) => void) {
    this.#select = db.prepare("SELECT seq, idx, type, time, data FROM kappa_outbox ORDER BY seq, idx LIMIT 1000");
    this.#delete = db.prepare("DELETE FROM kappa_outbox WHERE seq = ? AND idx = ?");
    this.#count = db.prepare("SELECT count(*) FROM kappa_outbox").pluck();
    this.#pub = new PipelinedPublisher(nc, { window: 1000 });
  }

  /** Starts a publishing round (or asks the running one to go again). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#drain().finally(() => {
      this.#running = undefined;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        this.kick();
      }
    });
  }

  async #drain(): Promise<void> {
    const enc = new TextEncoder();
    for (;;) {
      if (this.#stopped) return;
      const rows = this.#select.all() as OutboxRow[];
      this.pending = Number(this.#count.get());
      if (rows.length === 0) return;
      try {
        await ensureOutputStream(this.nc, this.output);
        const acks = rows.map((r) => this.#pub.publishNow(`${this.output.prefix}.${r.type}`, enc.encode(r.data), `${this.keyPrefix}:${r.seq}:${r.idx}`, { [TIME_HEADER]: r.time }));
        // Every ack gets a handler now: when one fails, the others reject in the same tick.
        for (const a of acks) a.catch(() => {});
        for (let i = 0; i < rows.length; i++) {
          await acks[i];
          if (this.#stopped) return;
          this.#delete.run(rows[i]!.seq, rows[i]!.idx);
        }
      } catch (err) {
        this.onTrouble(`publishing emitted events failed: ${messageOf(err)} — retrying`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running?.catch(() => {});
    this.#pub.close();
  }
}
