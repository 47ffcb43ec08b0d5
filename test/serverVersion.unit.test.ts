import { describe, it, expect } from "vitest";
import { execFileSync } from "node:child_process";
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

  it("refuses 2.11, which has no atomic batch publish (append --file, POST /events)", () => {
    expect(MIN_NATS_SERVER).toBe("2.12.0");
    expect(versionAtLeast("2.11.9", MIN_NATS_SERVER)).toBe(false);
    expect(versionAtLeast("2.12.0", MIN_NATS_SERVER)).toBe(true);
  });

  it("scripts/setup.sh reads the same minimum (it is written in one place)", () => {
    const script = "sed -n 's/^export const MIN_NATS_SERVER = \"\\(.*\\)\";/\\1/p' src/log/serverVersion.ts";
    expect(execFileSync("grep", ["-F", script, "scripts/setup.sh"], { encoding: "utf8" })).toContain("MIN=$(");
    expect(execFileSync("bash", ["-c", script], { encoding: "utf8" }).trim()).toBe(MIN_NATS_SERVER);
  });
});
