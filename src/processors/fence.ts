import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { headers as makeHeaders, type NatsConnection } from "@nats-io/nats-core";
import { KappaError } from "../errors.js";
import { isNotFound } from "../log/index.js";
import { FencedError, type WriterFence } from "../views/index.js";
import { ensureOutputStream, fenceSubject, type OutputSpec } from "./derived.js";

/** Where an outbox row sits in a version's output: the input sequence and the emit's index within it. */
export interface OutboxPosition {
  seq: number;
  idx: number;
}

/** A writer's fence in its output stream: emits carry these headers, so the stream refuses them once a newer fence lands. */
export interface OutputFence {
  /** Stream sequence of our fence message. */
  seq: number;
  headers: Record<string, string>;
  /** The last emit already in the output (by whichever writer): rows at or before it are not published again. */
  publishedUpTo: OutboxPosition | null;
}

/** Header naming the fencing token an emit was published under (for people reading the stream). */
export const FENCE_HEADER = "Kappa-Fence";

/** True for the stream's refusal of a publish whose expected last sequence no longer holds: a newer fence landed. */
export function isFenceRejection(err: unknown): boolean {
  const e = err as { code?: number; api_error?: { err_code?: number }; message?: string };
  return e?.api_error?.err_code === 10071 || e?.code === 10071 || /wrong last sequence/i.test(e?.message ?? "");
}

async function lastBySubject(jsm: JetStreamManager, stream: string, subject: string): Promise<{ seq: number; data: Uint8Array; msgId: string } | null> {
  try {
    // The API get (not a direct get) is answered by the stream leader, so it does not lag behind.
    const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    return m ? { seq: m.seq, data: m.data, msgId: m.header?.get("Nats-Msg-Id") ?? "" } : null;
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

/** The newest fence in a version's output (who may publish there now), or null. */
export async function lastFence(nc: NatsConnection, out: OutputSpec): Promise<WriterFence | null> {
  const last = await lastBySubject(await jetstreamManager(nc), out.stream, fenceSubject(out));
  return last ? (JSON.parse(new TextDecoder().decode(last.data)) as WriterFence) : null;
}

/** The position an outbox message id (`processor:version:seq:idx`) names, or null. */
export function positionOf(msgId: string): OutboxPosition | null {
  const parts = msgId.split(":");
  const seq = Number(parts.at(-2));
  const idx = Number(parts.at(-1));
  return parts.length >= 4 && Number.isInteger(seq) && Number.isInteger(idx) ? { seq, idx } : null;
}

/** The last emit already published to a version's output, or null when none (or no stream yet). */
export async function publishedUpTo(nc: NatsConnection, out: OutputSpec): Promise<OutboxPosition | null> {
  const last = await lastBySubject(await jetstreamManager(nc), out.stream, `${out.prefix}.>`);
  return last ? positionOf(last.msgId) : null;
}

/** True when the version's output stream exists (it has emitted, or a writer fenced it). */
export async function outputExists(nc: NatsConnection, out: OutputSpec): Promise<boolean> {
  try {
    await (await jetstreamManager(nc)).streams.info(out.stream);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/**
 * Installs our fence in the output stream: a message on the fence subject carrying our token, appended only if
 * the fence subject has not moved since we looked (expected last subject sequence), and refused when the last
 * fence carries a newer token. After it lands no older writer's emit can land, so the last emit we then read is final.
 */
export async function installFence(nc: NatsConnection, out: OutputSpec, fence: WriterFence): Promise<OutputFence> {
  await ensureOutputStream(nc, out);
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const subject = fenceSubject(out);
  for (let attempt = 0; attempt < 20; attempt++) {
    const last = await lastBySubject(jsm, out.stream, subject);
    if (last) {
      const theirs = (JSON.parse(new TextDecoder().decode(last.data)) as WriterFence).token;
      if (theirs > fence.token) throw new FencedError(`${out.stream}: fenced by a newer writer (token ${theirs} > ${fence.token})`);
    }
    const h = makeHeaders();
    h.set("Nats-Expected-Last-Subject-Sequence", String(last?.seq ?? 0));
    try {
      const ack = await js.publish(subject, JSON.stringify(fence), { headers: h });
      return {
        seq: ack.seq,
        headers: {
          "Nats-Expected-Last-Subject-Sequence": String(ack.seq),
          "Nats-Expected-Last-Subject-Sequence-Subject": subject,
          [FENCE_HEADER]: String(fence.token),
        },
        publishedUpTo: await publishedUpTo(nc, out),
      };
    } catch (err) {
      if (!isFenceRejection(err)) throw err;
    }
  }
  throw new KappaError("FENCE_CONTENDED", `${out.stream}: could not install the writer fence (the fence subject kept moving)`, { hint: "check `kappa status` for two workers claiming one version" });
}
