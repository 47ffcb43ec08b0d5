/** One heavy hitter: an item and its estimated count. */
export interface HeavyHitter {
  item: string;
  count: number;
}

/**
 * The k items with the largest counts, as a bounded candidate list. Order and eviction depend only
 * on (count, item), never on insertion history, so a restored copy behaves like the original.
 */
export class TopK {
  readonly k: number;
  readonly #counts = new Map<string, number>();

  constructor(k: number) {
    this.k = k;
  }

  /** Records an item's latest estimated count; returns the item evicted to make room, if any. */
  offer(item: string, count: number): { changed: boolean; evicted?: string } {
    if (this.k === 0) return { changed: false };
    const current = this.#counts.get(item);
    if (current !== undefined) {
      if (current === count) return { changed: false };
      this.#counts.set(item, count);
      return { changed: true };
    }
    if (this.#counts.size < this.k) {
      this.#counts.set(item, count);
      return { changed: true };
    }
    const weakest = this.#weakest();
    if (!beats(item, count, weakest.item, weakest.count)) return { changed: false };
    this.#counts.delete(weakest.item);
    this.#counts.set(item, count);
    return { changed: true, evicted: weakest.item };
  }

  /** True when the item is among the candidates. */
  has(item: string): boolean {
    return this.#counts.has(item);
  }

  /** The candidates, largest count first, ties by item. */
  list(): HeavyHitter[] {
    return [...this.#counts].map(([item, count]) => ({ item, count })).sort((a, b) => b.count - a.count || (a.item < b.item ? -1 : a.item > b.item ? 1 : 0));
  }

  /** The candidate that would be evicted next: the smallest count, ties by the greatest item. */
  #weakest(): HeavyHitter {
    let w: HeavyHitter | undefined;
    for (const [item, count] of this.#counts) {
      if (!w || beats(w.item, w.count, item, count)) w = { item, count };
    }
    return w!;
  }
}

/** Whether (a, ca) ranks above (b, cb): higher count, then smaller item. */
function beats(a: string, ca: number, b: string, cb: number): boolean {
  return ca > cb || (ca === cb && a < b);
}
