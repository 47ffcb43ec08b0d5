import { describe, it, expect, vi, afterEach } from "vitest";
import { LiveFirst } from "../src/processors/liveFirst.js";

afterEach(() => vi.useRealTimers());

describe("LiveFirst: a rebuild backs off while live events arrive later than usual", () => {
  it("holds rebuilds longer while live delay stays above its usual, eases off when it falls, and lets go when live events stop", () => {
    vi.useFakeTimers({ toFake: ["Date", "performance"] });
    const lf = LiveFirst.withoutPriorities();
    expect(lf.liveBusy).toBe(false);
    expect(lf.rebuildHoldMs).toBe(0);
    // Live events arriving 1 ms after they were stored: the usual delay, no hold.
    for (let i = 0; i < 50; i++) {
      vi.advanceTimersByTime(2);
      lf.sawLiveEvents(Date.now() - 1);
    }
    expect(lf.liveBusy).toBe(true);
    expect(lf.rebuildHoldMs).toBe(0);
    // Then 20 ms late: the hold doubles, at most every 10 ms, up to its cap.
    const holds: number[] = [];
    for (let i = 0; i < 100; i++) {
      vi.advanceTimersByTime(2);
      lf.sawLiveEvents(Date.now() - 20);
      holds.push(lf.rebuildHoldMs);
    }
    expect(holds[0]).toBe(2);
    expect(holds.every((h, i) => i === 0 || h >= holds[i - 1]!)).toBe(true);
    expect(Math.max(...holds)).toBe(200);
    expect(holds.filter((h) => h === 4).length).toBeGreaterThanOrEqual(4); // not doubled on every event
    // Back to the usual delay: halves every 100 ms, to 0.
    const easing: number[] = [];
    for (let i = 0; i < 600; i++) {
      vi.advanceTimersByTime(2);
      lf.sawLiveEvents(Date.now() - 1);
      easing.push(lf.rebuildHoldMs);
    }
    expect(easing.at(-1)).toBe(0);
    expect(easing.every((h, i) => i === 0 || h <= easing[i - 1]!)).toBe(true);
    expect(easing.includes(100)).toBe(true);
    // A clock difference between server and worker is no delay: only changes from the usual count.
    const skewed = LiveFirst.withoutPriorities();
    for (let i = 0; i < 100; i++) {
      vi.advanceTimersByTime(2);
      skewed.sawLiveEvents(Date.now() - 500);
    }
    expect(skewed.rebuildHoldMs).toBe(0);
    // Live events that stop: no hold, whatever it was.
    for (let i = 0; i < 20; i++) {
      vi.advanceTimersByTime(11);
      skewed.sawLiveEvents(Date.now() - 600);
    }
    expect(skewed.rebuildHoldMs).toBeGreaterThan(0);
    vi.advanceTimersByTime(1500);
    expect(skewed.liveBusy).toBe(false);
    expect(skewed.rebuildHoldMs).toBe(0);
  });
});
