import { describe, it, expect } from "vitest";
import { firstGap } from "../src/log/index.js";
import { positionOf } from "../src/processors/index.js";

describe("reading a derived stream that holds writer fences", () => {
  it("a skipped fence is no gap, a missing sequence still is", () => {
    const ev = (...s: number[]) => s.map((seq) => ({ seq }));
    expect(firstGap(ev(2, 3), 1, [1])).toBeNull();
    expect(firstGap(ev(1, 3, 4), 1, [2])).toBeNull();
    expect(firstGap(ev(1, 4), 1, [2])).toBe(3);
    expect(firstGap(ev(2, 3), 1)).toBe(1);
    expect(firstGap(ev(1, 2, 5), 3, [3, 4])).toBeNull(); // redelivered 1, 2 below the checkpoint
  });

  it("an outbox message id names its emit position", () => {
    expect(positionOf("order_facts:1:77:0")).toEqual({ seq: 77, idx: 0 });
    expect(positionOf("not-an-outbox-id")).toBeNull();
  });
});
