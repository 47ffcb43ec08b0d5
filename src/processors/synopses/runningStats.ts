import { ByteReader, ByteWriter } from "./bytes.js";
import { SynopsisStateError } from "./errors.js";
import type { Synopsis } from "./synopsis.js";

const MAGIC = 0x53; // "S"

/**
 * Count, sum, mean, variance, min and max of a stream of numbers in constant space.
 * Mean and variance use Welford's update, which stays accurate where sum-of-squares cancels.
 */
export class RunningStats implements Synopsis {
  #n = 0;
  #mean = 0;
  #m2 = 0;
  #sum = 0;
  #min = Infinity;
  #max = -Infinity;
  #revision = 0;

  /** See {@link Synopsis.revision}. */
  get revision(): number {
    return this.#revision;
  }

  /** Adds one number; non-finite numbers are refused because they would poison every statistic. */
  add(x: number): this {
    if (!Number.isFinite(x)) throw new RangeError(`RunningStats.add needs a finite number, got ${x}`);
    this.#n++;
    const d = x - this.#mean;
    this.#mean += d / this.#n;
    this.#m2 += d * (x - this.#mean);
    this.#sum += x;
    if (x < this.#min) this.#min = x;
    if (x > this.#max) this.#max = x;
    this.#revision++;
    return this;
  }

  /** Folds another stream's statistics into this one (Chan et al.'s parallel update). */
  merge(other: RunningStats): this {
    if (other.#n === 0) return this;
    if (this.#n === 0) {
      this.#n = other.#n; this.#mean = other.#mean; this.#m2 = other.#m2;
    } else {
      const n = this.#n + other.#n;
      const d = other.#mean - this.#mean;
      this.#mean += (d * other.#n) / n;
      this.#m2 += other.#m2 + (d * d * this.#n * other.#n) / n;
      this.#n = n;
    }
    this.#sum += other.#sum;
    this.#min = Math.min(this.#min, other.#min);
    this.#max = Math.max(this.#max, other.#max);
    this.#revision++;
    return this;
  }

  /** Numbers added. */
  get count(): number { return this.#n; }
  /** Their sum. */
  get sum(): number { return this.#sum; }
  /** Their mean, or null before the first number. */
  get mean(): number | null { return this.#n > 0 ? this.#mean : null; }
  /** Population variance (divides by n), or null before the first number. */
  get variance(): number | null { return this.#n > 0 ? this.#m2 / this.#n : null; }
  /** Sample variance (divides by n − 1), or null before the second number. */
  get sampleVariance(): number | null { return this.#n > 1 ? this.#m2 / (this.#n - 1) : null; }
  /** Population standard deviation, or null before the first number. */
  get stddev(): number | null { return this.#n > 0 ? Math.sqrt(this.#m2 / this.#n) : null; }
  /** Smallest number, or null before the first. */
  get min(): number | null { return this.#n > 0 ? this.#min : null; }
  /** Largest number, or null before the first. */
  get max(): number | null { return this.#n > 0 ? this.#max : null; }

  /** A plain summary, for result rows and JSON. */
  toJSON(): { count: number; sum: number; mean: number | null; variance: number | null; min: number | null; max: number | null } {
    return { count: this.count, sum: this.sum, mean: this.mean, variance: this.variance, min: this.min, max: this.max };
  }

  /** See {@link Synopsis.serialize}: 50 bytes whatever the stream's length. */
  serialize(): Uint8Array {
    const w = new ByteWriter(MAGIC, 50);
    for (const v of [this.#n, this.#mean, this.#m2, this.#sum, this.#min, this.#max]) w.f64(v);
    return w.finish();
  }

  /** Reads bytes written by {@link RunningStats.serialize}. */
  static deserialize(bytes: Uint8Array): RunningStats {
    const r = new ByteReader(bytes, MAGIC, "RunningStats");
    const s = new RunningStats();
    s.#n = r.f64(); s.#mean = r.f64(); s.#m2 = r.f64(); s.#sum = r.f64(); s.#min = r.f64(); s.#max = r.f64();
    r.end();
    if (!Number.isInteger(s.#n) || s.#n < 0) throw new SynopsisStateError(`stored RunningStats has count ${s.#n}`);
    return s;
  }
}
