import type { NatsConnection } from "@nats-io/nats-core";
import { Kvm, type KV } from "@nats-io/kv";
import { KappaError, messageOf } from "../errors.js";
import { replicasFor } from "../log/index.js";

/** The lease bucket's name for a stream. */
export function leaseBucket(stream: string): string {
  return `${stream}_leases`;
}

/** Default lease time to live: another worker takes over about this long (plus one poll) after a writer stops renewing. */
export const DEFAULT_LEASE_TTL_MS = 3000;

/** A lease this worker holds: `token` is the KV revision it was acquired at, larger than any earlier holder's. */
export interface HeldLease {
  key: string;
  token: number;
  /** The latest revision (renewals move it; the token does not). */
  revision: number;
  /** performance.now() until which we may act: renewal sent + 3/4 of the TTL, by our own monotonic clock. */
  validUntil: number;
}

/** What the lease value says (informational: leadership is decided by compare-and-set, never by reading it). */
export interface LeaseValue {
  worker: string;
  since: string;
}

function isRevisionConflict(err: unknown): boolean {
  const e = err as { code?: number; api_error?: { err_code?: number }; message?: string };
  return e?.api_error?.err_code === 10071 || e?.code === 10071 || /wrong last sequence|key exists/i.test(e?.message ?? "");
}

/**
 * Writer leases in a KV bucket whose max_age is the lease TTL: a key nobody renews disappears on the server
 * by the server's clock, and then `create` succeeds for exactly one candidate. Renewal is a compare-and-set on
 * the last revision; we stop acting by our own monotonic clock well before the server would expire the key.
 */
export class LeaseTable {
  readonly #held = new Map<string, HeldLease>();

  private constructor(private readonly kv: KV, readonly worker: string, readonly ttlMs: number) {}

  /** Opens (creating if needed, with `replicas` or the stream's own) the lease bucket; the TTL of an existing bucket wins over `ttlMs`. */
  static async open(nc: NatsConnection, stream: string, worker: string, ttlMs = DEFAULT_LEASE_TTL_MS, replicas?: number): Promise<LeaseTable> {
    try {
      const kv = await new Kvm(nc).create(leaseBucket(stream), { history: 1, ttl: ttlMs, replicas: await replicasFor(nc, stream, replicas) });
      const status = await kv.status();
      return new LeaseTable(kv, worker, status.ttl > 0 ? status.ttl : ttlMs);
    } catch (err) {
      throw new KappaError("LEASES_UNAVAILABLE", `cannot open the lease bucket ${leaseBucket(stream)}: ${messageOf(err)}`, {
        hint: "check that JetStream is enabled and reachable (`kappa log info`)",
        cause: err,
      });
    }
  }

  /** The lease on `key` if we hold it and our clock says it is still valid. */
  held(key: string): HeldLease | undefined {
    const l = this.#held.get(key);
    if (l && performance.now() < l.validUntil) return l;
    return undefined;
  }

  /** True when we believed we held `key` but our clock ran out: the caller must step down. */
  expired(key: string): boolean {
    const l = this.#held.get(key);
    return l !== undefined && performance.now() >= l.validUntil;
  }

  /**
   * Tries to take the lease: `create` wins when nobody holds it. A lease left by our own earlier incarnation
   * (the same worker id: the data dir lock proves that process is gone) is taken over at once by a
   * compare-and-set on its revision. Returns the lease, or undefined when someone else holds it.
   */
  async acquire(key: string): Promise<HeldLease | undefined> {
    const value = JSON.stringify({ worker: this.worker, since: new Date().toISOString() } satisfies LeaseValue);
    const sent = performance.now();
    let rev: number;
    try {
      rev = await this.kv.create(key, value);
    } catch (err) {
      if (!isRevisionConflict(err)) throw err;
      const cur = await this.kv.get(key);
      if (!cur || cur.operation !== "PUT" || cur.json<LeaseValue>().worker !== this.worker) return undefined;
      try {
        rev = await this.kv.update(key, value, cur.revision);
      } catch (err2) {
        if (isRevisionConflict(err2)) return undefined;
        throw err2;
      }
    }
    const lease = { key, token: rev, revision: rev, validUntil: sent + this.ttlMs * 0.75 };
    this.#held.set(key, lease);
    return lease;
  }

  /** Renews a held lease; returns false (and forgets it) when it was lost: expired by our clock, or taken. */
  async renew(key: string): Promise<boolean> {
    const l = this.#held.get(key);
    if (!l) return false;
    if (performance.now() >= l.validUntil) {
      this.#held.delete(key);
      return false;
    }
    const sent = performance.now();
    try {
      const rev = await this.kv.update(key, JSON.stringify({ worker: this.worker, since: new Date().toISOString() } satisfies LeaseValue), l.revision);
      if (this.#held.get(key) !== l) return false; // released meanwhile
      l.revision = rev;
      l.validUntil = sent + this.ttlMs * 0.75;
      return true;
    } catch (err) {
      if (isRevisionConflict(err)) {
        this.#held.delete(key);
        return false;
      }
      // NATS unreachable: keep the lease until our clock says otherwise; the next renewal may get through.
      return performance.now() < l.validUntil;
    }
  }

  /** Forgets a lease without touching the server (it was fenced or expired). */
  drop(key: string): void {
    this.#held.delete(key);
  }

  /** Gives a lease back (a clean stop): deleted with compare-and-set, so another worker takes over at once. */
  async release(key: string): Promise<void> {
    const l = this.#held.get(key);
    this.#held.delete(key);
    if (!l) return;
    await this.kv.delete(key, { previousSeq: l.revision }).catch(() => {});
  }

  /** Keys we hold now. */
  keys(): string[] {
    return [...this.#held.keys()];
  }
}
