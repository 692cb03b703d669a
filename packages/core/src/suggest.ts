/** Edit distance (insertions, deletions, substitutions) between two strings. */
export function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(
        (row[j] as number) + 1,
        (row[j - 1] as number) + 1,
        previous + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      previous = current;
    }
  }
  return row[b.length] as number;
}

/**
 * The candidate closest to `word` (case-insensitive edit distance), or undefined when even the closest is more
 * than max(2, ⌊length/3⌋) edits away. Ties go to the earlier candidate.
 */
export function closestMatch(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = levenshtein(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/**
 * A ` (did you mean "x"?)` suffix naming the candidate closest to `word` (see `closestMatch`), or `''` when none
 * is close. PEFT.js words every unknown-name error with it: options, flags, commands, plugin types, task names.
 */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const best = closestMatch(word, candidates);
  return best === undefined ? '' : ` (did you mean "${best}"?)`;
}
