/**
 * "Did you mean": the known name closest to a mistyped one, for unknown commands and options.
 */

/**
 * Edit distance with adjacent transpositions (optimal string alignment): insertions, deletions,
 * substitutions and swaps of two neighbours ("josn" → "json") cost 1 each.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * The candidate closest to `typed`, if it is close enough to be what was meant: within a third of
 * the longer name's length (at least 1), or one that starts with what was typed. Ties go to the
 * first candidate.
 */
export function closest(typed: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(typed, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  if (best === undefined) return undefined;
  const limit = Math.max(1, Math.floor(Math.max(typed.length, best.length) / 3));
  if (bestDistance <= limit) return best;
  const prefixed = typed.length >= 2 ? candidates.filter((c) => c.startsWith(typed)) : [];
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** " (did you mean X?)", or "" when nothing is close. */
export function didYouMean(typed: string, candidates: readonly string[], show: (name: string) => string = (n) => n): string {
  const c = closest(typed, candidates);
  return c === undefined ? "" : ` (did you mean ${show(c)}?)`;
}
