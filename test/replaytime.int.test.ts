import { describe, it, expect } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { TestEnv } from "./support/env.js";
import { SlowLink } from "./support/slowLink.js";
import { connectNats, firstSeqAtOrAfter } from "../src/log/index.js";

describe("replay from a time", () => {
  it("finds the first event at or after the time even when the server answers slowly, and the end for a time after the last event", async () => {
    await using env = await TestEnv.start();
    await env.appendOrders(30, 95);
    await new Promise((r) => setTimeout(r, 20));
    const cut = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    await env.appendOrders(20, 96);
    const jsm = await jetstreamManager(env.nc);
    const first = await jsm.streams.getMessage(env.spec.stream, { seq: 31 });
    expect(first!.time.getTime()).toBeGreaterThanOrEqual(Date.parse(cut));

    await using link = await SlowLink.start({ host: "127.0.0.1", port: env.server.port });
    const nc = await connectNats({ url: link.url });
    try {
      const slowJs = jetstream(nc);
      const slowJsm = await jetstreamManager(nc);
      link.delayUpMs = 3000; // the server sees every request 3 s late (requests time out at 5 s)
      expect(await firstSeqAtOrAfter(slowJs, slowJsm, env.spec.stream, cut)).toBe(31);
      link.delayUpMs = 0;
      expect(await firstSeqAtOrAfter(slowJs, slowJsm, env.spec.stream, first!.time.toISOString())).toBe(31);
      expect(await firstSeqAtOrAfter(slowJs, slowJsm, env.spec.stream, new Date(Date.now() + 60_000).toISOString())).toBe(51);
      expect(await firstSeqAtOrAfter(slowJs, slowJsm, env.spec.stream, "2000-01-01T00:00:00Z")).toBe(1);
    } finally {
      await nc.close();
    }
  }, 180_000);
});
