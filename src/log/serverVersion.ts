import type { NatsConnection } from "@nats-io/nats-core";
import { KappaError } from "../errors.js";

/**
 * The oldest nats-server Kappa runs on: `append --file` and `POST /events` store each batch all-or-nothing
 * with atomic batch publish (2.12, stream `allow_atomic`); replay from a time asks the server for the
 * message at a start time (2.11); the KV compare-and-set that every promotion and lease relies on was
 * only made safe on clusters in 2.9.21 (nats-server #4320). scripts/setup.sh reads this line.
 */
export const MIN_NATS_SERVER = "2.12.0";

/** The nats-server release Kappa is tested with, and the one scripts/setup.sh installs. */
export const TESTED_NATS_SERVER = "2.15.1";

/** How to get a current server, for hints (the README's "Set up" lists the other ways). */
export const GET_NATS_SERVER_HINT =
  `\`bash scripts/setup.sh\` fetches nats-server ${TESTED_NATS_SERVER} into .tools/; or install a release binary, the nats container image or \`go install github.com/nats-io/nats-server/v2@v${TESTED_NATS_SERVER}\`, then put it on PATH or set KAPPA_NATS_SERVER`;

/** Parses "2.15.1", "v2.10.0-beta.3" or "nats-server: v2.9.10" into [major, minor, patch]; null when it is not a version. */
export function parseServerVersion(text: string): [number, number, number] | null {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

/** True when version `a` is at least `b`. */
export function versionAtLeast(a: string, b: string): boolean {
  const va = parseServerVersion(a);
  const vb = parseServerVersion(b);
  if (!va || !vb) return false;
  for (let i = 0; i < 3; i++) if (va[i] !== vb[i]) return va[i]! > vb[i]!;
  return true;
}

/** The error for a server below the minimum: the version found, the minimum, and how to get a newer one. */
export function serverTooOld(found: string, where: string): KappaError {
  return new KappaError("NATS_SERVER_TOO_OLD", `${where} is nats-server ${found}; Kappa needs ${MIN_NATS_SERVER} or newer`, {
    hint: GET_NATS_SERVER_HINT,
  });
}

/** Refuses a connection to a server below the minimum (the version comes with the server's INFO, no extra request). */
export function checkServerVersion(nc: NatsConnection, url: string): void {
  const version = nc.info?.version;
  if (version && !versionAtLeast(version, MIN_NATS_SERVER)) throw serverTooOld(version, `the NATS server at ${url}`);
}
