import { resolve } from 'node:path';
import type { IdxDataset, Split } from '@peftjs/data';
import type { EvalMetrics, RankedPrediction } from '@peftjs/train';

/**
 * Predictions a person can use: each image's file, its true label when known, and the most probable classes with
 * their probabilities — the rows of predictions.jsonl (`peft train`) and of `peft predict`.
 */

/** How many classes a prediction lists, at most. */
export const TOP_CLASSES = 5;

/** One class of a prediction. */
export interface RankedClass {
  /** Class index. */
  readonly class: number;
  /** Class name, when the data has names (image folders). */
  readonly name?: string;
  /** Softmax probability. */
  readonly probability: number;
}

/** A row of predictions.jsonl. */
export interface PredictionRow {
  /** Position in the split's list. */
  readonly index: number;
  /** The image file (for IDX data: `<images file>#<index>`). */
  readonly path: string;
  /** The true class. */
  readonly label: number;
  /** The true class's name, when known. */
  readonly labelName?: string;
  /** The predicted class (the most probable). */
  readonly predicted: number;
  /** Whether `predicted` is `label`. */
  readonly correct: boolean;
  /** The most probable classes, best first. */
  readonly top: readonly RankedClass[];
}

/** A ranked prediction's classes with names and probabilities. */
export function rankedClasses(ranked: RankedPrediction, names?: readonly string[]): RankedClass[] {
  return ranked.classes.map((c, i) => ({
    class: c,
    ...(names?.[c] !== undefined ? { name: names[c] } : {}),
    probability: Number((ranked.probabilities[i] as number).toFixed(6)),
  }));
}

/** The image path and true label of example `i` of a split. */
function example(source: Split | IdxDataset, i: number): { path: string; label: number } {
  if ('samples' in source) {
    const sample = source.samples[i];
    return { path: sample?.path ?? `#${i}`, label: sample?.label ?? -1 };
  }
  return { path: `${source.files.images}#${i}`, label: source.labels[i] ?? -1 };
}

/** The rows of predictions.jsonl for an evaluation of `source` (made with `topK`). */
export function predictionRows(
  metrics: EvalMetrics,
  source: Split | IdxDataset,
  names?: readonly string[],
): PredictionRow[] {
  return metrics.predictions.map((predicted, index) => {
    const { path, label } = example(source, index);
    const ranked = metrics.ranked?.[index];
    return {
      index,
      path,
      label,
      ...(names?.[label] !== undefined ? { labelName: names[label] } : {}),
      predicted,
      correct: predicted === label,
      top: ranked ? rankedClasses(ranked, names) : [],
    };
  });
}

/** True labels by absolute image path, from every list-based split (for `peft predict` on listed images). */
export function knownLabels(splits: readonly Split[]): Map<string, number> {
  const labels = new Map<string, number>();
  for (const split of splits)
    for (const sample of split.samples) labels.set(resolve(sample.path), sample.label);
  return labels;
}
