import { NotFoundError } from "../errors.js";

/** Edit distance (insertions, deletions, substitutions), for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** The known name closest to `name`, if it is close enough to be a typo (or `name` is part of it). */
export function closestName(name: string, known: readonly string[]): string | undefined {
  let best: { n: string; d: number } | undefined;
  for (const n of known) {
    const d = n.includes(name) || name.includes(n) ? 1 : distance(name, n);
    if (!best || d < best.d) best = { n, d };
  }
  return best && best.d <= Math.max(2, Math.floor(best.n.length / 3)) ? best.n : undefined;
}

/** "processor x is not deployed", with a "did you mean y?" when a deployed name is close. */
export function notDeployed(name: string, known: readonly string[]): NotFoundError {
  const near = closestName(name, known);
  return new NotFoundError(`processor ${name} is not deployed${near ? ` — did you mean ${near}?` : ""}`, {
    hint: known.length ? `deployed: ${known.slice(0, 10).join(", ")}${known.length > 10 ? ", …" : ""}` : "nothing is deployed yet: `kappa deploy <module>`",
  });
}
