import { PeftError } from '@peftjs/core';

/**
 * The largest class count ever inferred from labels (largest label + 1). A larger count must be stated with the
 * `numClasses` option: a typo such as label 2000000 would otherwise build a head of millions of classes.
 */
export const MAX_INFERRED_CLASSES = 100_000;

/** How many inferred classes may lack a sample before the count is refused (besides "more than half"). */
const TOLERATED_EMPTY_CLASSES = 16;

/**
 * Infers a class count as the largest label + 1, refusing counts that a typo would produce: more than
 * `MAX_INFERRED_CLASSES`, or more classes without a single sample than with one (and more than 16 of them).
 * Negative labels are ignored here (the data checks report them). `locate(i)` says where label `i` was read
 * (`file:line`, or file and index), quoted with the offending label. Throws `INVALID_CONFIG` naming `subject`
 * and the `numClasses` option that accepts a deliberate count.
 */
export function inferClassCount(
  labels: ArrayLike<number>,
  locate: (index: number) => string,
  subject: string,
): number {
  let largest = -1;
  let at = -1;
  const seen = new Set<number>();
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i] as number;
    if (!Number.isInteger(label) || label < 0) continue;
    seen.add(label);
    if (label > largest) {
      largest = label;
      at = i;
    }
  }
  if (largest < 0) {
    throw new PeftError(
      'INVALID_CONFIG',
      `${subject}: no non-negative labels to infer the class count from; pass numClasses (peft: data.numClasses)`,
    );
  }
  const count = largest + 1;
  const empty = count - seen.size;
  const tooMany = count > MAX_INFERRED_CLASSES;
  if (tooMany || (empty > seen.size && empty > TOLERATED_EMPTY_CLASSES)) {
    const why = tooMany
      ? `more than the ${MAX_INFERRED_CLASSES.toLocaleString('en-US')} ever inferred`
      : `but only ${seen.size.toLocaleString('en-US')} distinct labels appear`;
    throw new PeftError(
      'INVALID_CONFIG',
      `${subject}: label ${largest} at ${locate(at)} would make ${count.toLocaleString('en-US')} classes, ${why}. ` +
        'Fix the label if it is a typo, or state the class count with numClasses (peft: data.numClasses) to accept it',
    );
  }
  return count;
}
