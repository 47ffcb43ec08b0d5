import { describe, it, expect } from "vitest";
import { MIN_NATS_SERVER, parseServerVersion, versionAtLeast } from "../src/log/index.js";

describe("the nats-server version check", () => {
  it("reads the versions servers report", () => {
    expect(parseServerVersion("nats-server: v2.15.1")).toEqual([2, 15, 1]);
    expect(parseServerVersion("2.10.0-beta.3")).toEqual([2, 10, 0]);
    expect(parseServerVersion("garbage")).toBeNull();
  });

  it("compares by number, not by text", () => {
    expect(versionAtLeast("2.10.0", "2.9.21")).toBe(true);
    expect(versionAtLeast("2.9.10", "2.10.0")).toBe(false);
    expect(versionAtLeast("2.15.1", MIN_NATS_SERVER)).toBe(true);
    expect(versionAtLeast(MIN_NATS_SERVER, MIN_NATS_SERVER)).toBe(true);
    expect(versionAtLeast("unknown", MIN_NATS_SERVER)).toBe(false);
  });

  it("refuses Debian 12's 2.9.10, whose KV compare-and-set is unsafe on a cluster", () => {
    expect(versionAtLeast("2.9.10", MIN_NATS_SERVER)).toBe(false);
  });
});
