/** Upper bounds in ms, fit for batch apply times from sub-millisecond trickles to large replay batches. */
export const DURATION_BUCKETS_MS = [0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500];

/** A fixed-size histogram of durations: cumulative counts per bucket, as Prometheus expects. */
export class DurationHistogram {
  readonly #counts = new Array<number>(DURATION_BUCKETS_MS.length).fill(0);
  #sum = 0;
  #count = 0;

  observe(ms: number): void {
    this.#sum += ms;
    this.#count++;
    for (let i = 0; i < DURATION_BUCKETS_MS.length; i++) if (ms <= DURATION_BUCKETS_MS[i]!) this.#counts[i]!++;
  }

  /** Cumulative counts per upper bound (the +Inf bucket is `count`). */
  snapshot(): { le: number[]; counts: number[]; sum: number; count: number } {
    return { le: DURATION_BUCKETS_MS, counts: [...this.#counts], sum: Math.round(this.#sum * 1000) / 1000, count: this.#count };
  }
}
