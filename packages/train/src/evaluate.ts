import { PeftError, type PeftModel, requirePositiveInt, tf } from '@peftjs/core';
import type { TrainingData } from './data.js';

/** Accuracies are fractions in [0, 1]. */
export interface EvalMetrics {
  /** Fraction of examples whose highest logit is the true class. */
  readonly top1: number;
  /** Top-5 accuracy; null when there are fewer than 5 classes. */
  readonly top5: number | null;
  /** Accuracy per true class; NaN for a class with no examples. */
  readonly perClass: number[];
  /** `confusion[true][predicted]` counts. */
  readonly confusion: number[][];
  /** Number of examples evaluated. */
  readonly count: number;
  /** Predicted class of every example, in data order. */
  readonly predictions: number[];
  /** With `EvaluateOptions.topK`: each example's most probable classes, best first, in data order. */
  readonly ranked?: RankedPrediction[];
}

/** An example's most probable classes (softmax of the logits), best first. */
export interface RankedPrediction {
  /** Class indices, most probable first. */
  readonly classes: number[];
  /** Their probabilities, in the same order. */
  readonly probabilities: number[];
}

/** The scalar part of `EvalMetrics`, as kept in histories, events and checkpoints. */
export interface MetricSummary {
  /** Top-1 accuracy in [0, 1]. */
  readonly top1: number;
  /** Top-5 accuracy in [0, 1]; null when there are fewer than 5 classes. */
  readonly top5: number | null;
  /** Number of examples evaluated. */
  readonly count: number;
}

/** Keeps the scalar fields of `metrics` (top-1, top-5, count). */
export function summarize(metrics: EvalMetrics): MetricSummary {
  return { top1: metrics.top1, top5: metrics.top5, count: metrics.count };
}

/** Options of `evaluate`. */
export interface EvaluateOptions {
  /** Examples per forward pass (a positive integer); affects speed and memory only. */
  batchSize: number;
  /** Also keep each example's `topK` most probable classes with their probabilities (`EvalMetrics.ranked`). */
  topK?: number;
  /** Called after each batch with the examples evaluated so far and the total (progress bars). */
  onBatch?: (done: number, total: number) => void;
}

/** Evaluation-mode accuracy, per-class accuracy and confusion matrix over every example of `data`, in order. */
export async function evaluate(
  model: PeftModel,
  data: TrainingData,
  options: EvaluateOptions,
): Promise<EvalMetrics> {
  const batchSize = requirePositiveInt('batchSize', options.batchSize);
  const classes = data.numClasses;
  const k = Math.min(5, classes);
  const keep = options.topK === undefined ? 0 : Math.min(requirePositiveInt('topK', options.topK), classes);
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  const predictions: number[] = [];
  const ranked: RankedPrediction[] = [];
  let top1 = 0;
  let top5 = 0;
  const batches = data.batches({ batchSize, shuffle: false, seed: 0, epoch: 0, dropLast: false });
  for await (const { images, labels } of batches) {
    const [top, truth, best] = tf.tidy(() => {
      const logits = model.predict(images);
      if (logits.shape[1] !== classes) {
        throw new PeftError(
          'SHAPE_MISMATCH',
          `the model predicts ${logits.shape[1]} classes but the evaluation data has numClasses ${classes}`,
        );
      }
      const probable = keep > 0 ? [tf.topk(tf.softmax(logits), keep)] : [];
      return [tf.topk(logits, k).indices, tf.cast(labels, 'int32'), ...probable];
    }) as [tf.Tensor, tf.Tensor, { values: tf.Tensor; indices: tf.Tensor }?];
    const ranks = (await top.data()) as Int32Array;
    const y = (await truth.data()) as Int32Array;
    if (best) ranked.push(...(await rankedRows(best, keep)));
    tf.dispose([top, truth, ...(best ? [best.values, best.indices] : [])]);
    for (let i = 0; i < y.length; i++) {
      const label = y[i] as number;
      if (!(label >= 0 && label < classes)) {
        throw new PeftError(
          'SHAPE_MISMATCH',
          `evaluation label ${label} is outside [0, numClasses ${classes})`,
        );
      }
      const first = ranks[i * k] as number;
      predictions.push(first);
      (confusion[label] as number[])[first] = ((confusion[label] as number[])[first] ?? 0) + 1;
      if (first === label) top1++;
      for (let j = 0; j < k; j++) {
        if (ranks[i * k + j] === label) {
          top5++;
          break;
        }
      }
    }
    options.onBatch?.(predictions.length, data.size);
  }
  const count = predictions.length;
  if (count === 0) throw new PeftError('INVALID_OPTION', 'cannot evaluate on an empty split (size 0)');
  const perClass = confusion.map((row, c) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total === 0 ? Number.NaN : (row[c] as number) / total;
  });
  return {
    top1: top1 / count,
    top5: classes >= 5 ? top5 / count : null,
    perClass,
    confusion,
    count,
    predictions,
    ...(keep > 0 ? { ranked } : {}),
  };
}

/** Rows of a `topk` result as `RankedPrediction`s. */
async function rankedRows(
  best: { values: tf.Tensor; indices: tf.Tensor },
  keep: number,
): Promise<RankedPrediction[]> {
  const values = (await best.values.data()) as Float32Array;
  const indices = (await best.indices.data()) as Int32Array;
  const rows: RankedPrediction[] = [];
  for (let i = 0; i < indices.length / keep; i++) {
    rows.push({
      classes: Array.from(indices.subarray(i * keep, (i + 1) * keep)),
      probabilities: Array.from(values.subarray(i * keep, (i + 1) * keep)),
    });
  }
  return rows;
}
