import { nuid } from "@nats-io/nats-core";

/** The server's err_code for a publish refused because of `Nats-Expected-Last-Msg-Id`. */
export const ERR_WRONG_LAST_MSG_ID = 10070;
/** The server's err_code for a publish refused because of `Nats-Expected-Last-Sequence`. */
export const ERR_WRONG_LAST_SEQUENCE = 10071;

/**
 * Headers that make a publish look its id up without storing anything: an expectation no stream meets,
 * so the server refuses the publish, unless the id is a duplicate, which it answers first with the
 * sequence it is stored at. Which expectation depends on the stream, measured on nats-server 2.15.1:
 * a single-replica stream answers a duplicate before it checks an expected last id, but checks an
 * expected last sequence first; a replicated stream answers a duplicate before an expected last
 * sequence, and after refusing one publish for its expected last id it acknowledged no publish at
 * all for more than a minute.
 */
export function lookupHeaders(replicas: number): Record<string, string> {
  return replicas > 1 ? { "Nats-Expected-Last-Sequence": String(Number.MAX_SAFE_INTEGER) } : { "Nats-Expected-Last-Msg-Id": `kappa-probe-${nuid.next()}` };
}
