import type { Database, Statement } from "better-sqlite3";
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { KappaError, messageOf } from "../errors.js";
import { PipelinedPublisher, TIME_HEADER, isNotFound } from "../log/index.js";
import { ensureOutputStream, forgetOutputStream } from "./derived.js";
import { isFenceRejection } from "./fence.js";

/** Decides, before each publishing round, whether this replica may publish (it is the fenced writer); `headers` go on the round's first publish. */
export interface OutboxGate {
  /** `publish: false`: not the writer, publish nothing; rows at or before `publishedUpTo` are out already and dropped. */
  permit(): Promise<{ publish: boolean; publishedUpTo: { seq: number; idx: number } | null; headers?: Record<string, string> }>;
  /** The stream refused a publish (wrong last sequence): the gate finds out whether a newer writer fenced it. */
  rejected(err: unknown): Promise<void>;
}

interface OutboxRow {
  seq: number;
  idx: number;
  type: string;
  time: string;
  data: string;
}

/** Header on every emitted event: `<input seq>:<index>` of the emit that produced it. */
export const SOURCE_HEADER = "Kappa-Source";

/** The last emit an output stream holds, and the stream's last sequence. */
interface OutputMark {
  seq: number;
  idx: number;
  streamLast: number;
}

/**
 * Publishes what ctx.emit wrote to the outbox, in order, and deletes rows once JetStream acknowledged them.
 * What the output stream already holds is read from the stream itself, not from the duplicate window:
 * before publishing, the publisher reads the stream's last message (its Kappa-Source header says which
 * emit it was) and drops every outbox row at or below it. So a crash between publish and delete, or a
 * rebuild of the whole view file long after the window has passed, republishes nothing. Each publish
 * also expects the stream's last sequence (Nats-Expected-Last-Sequence): a lost or refused message
 * stops every later one, so the output never has a gap followed by later emits.
 */
export class OutboxPublisher {
  readonly #select: Statement;
  readonly #delete: Statement;
  readonly #dropUpTo: Statement;
  readonly #count: Statement;
  readonly #any: Statement;
  readonly #pub: PipelinedPublisher;
  #mark: OutputMark | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  pending = 0;

  constructor(db: Database, private readonly nc: NatsConnection, private readonly output: { stream: string; prefix: string }, private readonly keyPrefix: string, private readonly onTrouble: (m: string) => void, private readonly gate?: OutboxGate) {
    this.#select = db.prepare("SELECT seq, idx, type, time, data FROM kappa_outbox ORDER BY seq, idx LIMIT 1000");
    this.#delete = db.prepare("DELETE FROM kappa_outbox WHERE seq = ? AND idx = ?");
    this.#dropUpTo = db.prepare("DELETE FROM kappa_outbox WHERE seq < ? OR (seq = ? AND idx <= ?)");
    this.#count = db.prepare("SELECT count(*) FROM kappa_outbox").pluck();
    this.#any = db.prepare("SELECT 1 FROM kappa_outbox LIMIT 1").pluck();
    this.#pub = new PipelinedPublisher(nc, { window: 1000 });
  }

  /** True when every emit written so far has been acknowledged by the output stream. */
  get empty(): boolean {
    return this.#any.get() === undefined;
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
    let fence: Record<string, string> | undefined;
    for (;;) {
      if (this.#stopped) return;
      try {
        if (this.gate) {
          if (this.empty) return void (this.pending = 0);
          const gate = await this.gate.permit();
          if (this.#stopped) return;
          if (!gate.publish) {
            // The writer publishes: drop what it did, and read the stream afresh should we take over.
            this.#mark = undefined;
            const up = gate.publishedUpTo;
            if (up) this.#dropUpTo.run(up.seq, up.seq, up.idx);
            this.pending = Number(this.#count.get());
            return;
          }
          fence = gate.headers;
        }
        const mark = (this.#mark ??= await this.#readMark());
        if (this.#stopped) return;
        this.#dropUpTo.run(mark.seq, mark.seq, mark.idx);
        const rows = this.#select.all() as OutboxRow[];
        this.pending = Number(this.#count.get());
        if (rows.length === 0) return;
        const base = mark.streamLast;
        const acks = rows.map((r, i) =>
          this.#pub.publishNow(`${this.output.prefix}.${r.type}`, enc.encode(r.data), `${this.keyPrefix}:${r.seq}:${r.idx}`, {
            [TIME_HEADER]: r.time,
            [SOURCE_HEADER]: `${r.seq}:${r.idx}`,
            "Nats-Expected-Last-Sequence": String(base + i),
            // The first publish of a round checks the writer's fence; the chain of expected sequences then
            // fences the rest (a newer fence would break it). A clustered stream refuses pipelined publishes
            // that all check one subject's sequence, so only one per round does.
            ...(i === 0 ? fence : {}),
          }),
        );
        // Every ack gets a handler now: when one fails, the others reject in the same tick.
        for (const a of acks) a.catch(() => {});
        for (let i = 0; i < rows.length; i++) {
          const ack = await acks[i]!;
          if (this.#stopped) return;
          if (ack.duplicate) throw new KappaError("OUTBOX_OUT_OF_STEP", `emit ${rows[i]!.seq}:${rows[i]!.idx} was already in ${this.output.stream}`);
          this.#delete.run(rows[i]!.seq, rows[i]!.idx);
          this.#mark = { seq: rows[i]!.seq, idx: rows[i]!.idx, streamLast: ack.seq };
        }
      } catch (err) {
        this.#mark = undefined; // read again what the stream holds before the next try
        if (this.gate && isFenceRejection(err)) await this.gate.rejected(err).catch(() => {});
        this.onTrouble(`publishing emitted events failed: ${messageOf(err)} — retrying`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Reads the output stream's last message: which emit it carries, and the stream's last sequence. */
  async #readMark(): Promise<OutputMark> {
    await ensureOutputStream(this.nc, this.output);
    const jsm = await jetstreamManager(this.nc);
    let last: number;
    try {
      last = (await jsm.streams.info(this.output.stream)).state.last_seq;
    } catch (err) {
      // Gone since we made it (the store was wiped): the next round creates it again.
      if (isNotFound(err)) forgetOutputStream(this.nc, this.output);
      throw err;
    }
    if (last === 0) return { seq: -1, idx: -1, streamLast: 0 };
    let m;
    try {
      // The last emit, not the last message: writer fences (outside the prefix) may follow it.
      m = await jsm.streams.getMessage(this.output.stream, { last_by_subj: `${this.output.prefix}.>` });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (!m) return { seq: -1, idx: -1, streamLast: last };
    const source = m?.header.get(SOURCE_HEADER) || msgIdSource(m?.header.get("Nats-Msg-Id") ?? "", this.keyPrefix);
    const parts = source?.split(":").map(Number);
    if (!parts || parts.length !== 2 || !parts.every(Number.isInteger)) {
      throw new KappaError("OUTPUT_UNKNOWN", `the last event of ${this.output.stream} (seq ${m.seq}) was not written by this version's outbox`, {
        hint: "only Kappa may publish to output streams; check what else writes to it",
      });
    }
    return { seq: parts[0]!, idx: parts[1]!, streamLast: last };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running?.catch(() => {});
    this.#pub.close();
  }
}

/** `<seq>:<idx>` from an idempotency key `<processor>:<version>:<seq>:<idx>` (streams written before the Kappa-Source header). */
function msgIdSource(id: string, keyPrefix: string): string | undefined {
  return id.startsWith(keyPrefix + ":") ? id.slice(keyPrefix.length + 1) : undefined;
}
