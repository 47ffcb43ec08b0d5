import { describe, expect, it } from "vitest";
import { exitCodeOf } from "../src/cli/output.js";
import { InputError, KappaError, NotFoundError, UnavailableError } from "../src/errors.js";

// The README's one rule: 2 when the command as typed must change, 1 when it may work later as it is.
describe("exit codes", () => {
  it("is 2 for input the user must change, also when it is not an InputError", () => {
    expect(exitCodeOf(new InputError("bad flag"))).toBe(2);
    expect(exitCodeOf(new NotFoundError("no such processor"))).toBe(2);
    expect(exitCodeOf(new KappaError("BAD_PORT", "port"))).toBe(2);
    for (const code of ["CODE_LOAD_FAILED", "TLS_FILE", "STREAM_NOT_APPEND_ONLY", "STREAM_REPLICAS", "NO_FROZEN_VERSION", "TOKEN_REQUIRED"]) {
      expect(exitCodeOf(new KappaError(code, "x")), code).toBe(2);
    }
  });
  it("is 1 for what lies outside the command", () => {
    expect(exitCodeOf(new UnavailableError("NATS_UNREACHABLE", "down"))).toBe(1);
    expect(exitCodeOf(new KappaError("VERSION_FAILED", "failed while running"))).toBe(1);
    expect(exitCodeOf(new KappaError("CATALOG_CONFLICT", "lost a race"))).toBe(1);
    expect(exitCodeOf(new Error("anything else"))).toBe(1);
  });
});
