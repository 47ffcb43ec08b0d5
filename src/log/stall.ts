import type { ConsumerMessages } from "@nats-io/jetstream";
import { KappaError } from "../errors.js";

/**
 * Consecutive missed idle heartbeats (each half the pull's 5 s expiry) after which a reader gives up on its
 * consumer. An ordered consumer is a single copy placed on one server: when that server dies, nats.js keeps
 * asking it for consumer info and never recreates the consumer, so the read would stall until the server
 * returns. Failing the read lets the runner open a new consumer from its checkpoint on the servers still up.
 */
export const STALL_HEARTBEATS = 4;

/** Calls `onStall` once when the consumer has missed STALL_HEARTBEATS heartbeats in a row. */
export function watchForStall(msgs: ConsumerMessages, onStall: (err: KappaError) => void): void {
  void (async () => {
    try {
      for await (const s of msgs.status()) {
        if (s.type === "heartbeats_missed" && s.count >= STALL_HEARTBEATS) {
          onStall(new KappaError("READ_STALLED", `the log's consumer missed ${s.count} heartbeats in a row (its server may be down); reopening from the checkpoint`, {
            hint: "nothing to do: the read resumes on a server that is up",
          }));
          return;
        }
      }
    } catch {
      // the status stream ends with the subscription
    }
  })();
}
