import { PeftError, type PeftModel, requirePositiveInt, tf } from '@peftjs/core';
import type { Tensor, Tensor1D, Tensor4D } from '@peftjs/core';
import type { Optimizer } from './optimizers.js';

/** Training stopped because the loss was NaN or ±Inf; the optimizer step of that batch was not applied. */
export class NonFiniteLossError extends PeftError {
  /** 0-based epoch in which training stopped. */
  readonly epoch: number;
  /** Global optimizer step (0-based) whose loss was not finite. */
  readonly step: number;
  /**
   * The offending loss (NaN or ±Infinity); when a parameter became non-finite at checkpoint time, the epoch's
   * mean loss.
   */
  readonly loss: number;

  constructor(message: string, details: { epoch: number; step: number; loss: number }) {
    super('NON_FINITE_LOSS', message);
    this.name = 'NonFiniteLossError';
    this.epoch = details.epoch;
    this.step = details.step;
    this.loss = details.loss;
  }
}

/** Options of `accumulateGradients`. */
export interface AccumulateOptions {
  /** Examples per forward/backward pass; the whole batch when omitted. */
  microBatch?: number;
  /** Visible to plugin hooks (loss warm-ups). */
  epoch?: number;
}

/** What `accumulateGradients` returns. */
export interface AccumulatedGradients {
  /** Batch-mean loss (weighted mean of the micro-batch means). */
  readonly loss: number;
  /** `ce` and each auxiliary loss (unweighted), batch means. */
  readonly parts: Record<string, number>;
  /** Batch-mean gradients by parameter name; the caller disposes them. */
  readonly grads: Record<string, Tensor>;
}

/** Options of `trainStep`. */
export interface TrainStepOptions extends AccumulateOptions {
  /** Learning rate of this step (≥ 0). */
  lr: number;
  /** Global step index, used only to name the step in a non-finite-loss error. */
  step?: number;
}

/**
 * Loss and gradients of one batch computed over micro-batches: each micro-batch's gradients are weighted by its
 * share of the batch (n_i / B) and summed, which equals the full-batch gradient for mean losses. Stochastic parts of
 * the forward (DropPath) draw one mask per micro-batch, so they differ from a single pass.
 */
export function accumulateGradients(
  model: PeftModel,
  images: Tensor4D,
  labels: Tensor1D,
  options: AccumulateOptions = {},
): AccumulatedGradients {
  const size = images.shape[0];
  if (labels.shape[0] !== size) {
    throw new PeftError('SHAPE_MISMATCH', `batch has ${size} images but ${labels.shape[0]} labels`);
  }
  const micro = Math.min(size, requirePositiveInt('microBatch', options.microBatch ?? size));
  const forward = { training: true, epoch: options.epoch ?? 0 };
  if (micro === size) {
    const out = model.lossAndGradients(images, labels, forward);
    const loss = out.loss.dataSync()[0] as number;
    out.loss.dispose();
    return { loss, parts: out.parts, grads: out.grads };
  }
  const sum: Record<string, Tensor> = {};
  let loss = 0;
  const parts: Record<string, number> = {};
  try {
    for (let start = 0; start < size; start += micro) {
      const n = Math.min(micro, size - start);
      const weight = n / size;
      const x = tf.slice(images, [start, 0, 0, 0], [n, -1, -1, -1]);
      const y = tf.slice(labels, [start], [n]);
      let out: ReturnType<PeftModel['lossAndGradients']>;
      try {
        out = model.lossAndGradients(x, y, forward);
      } finally {
        tf.dispose([x, y]);
      }
      loss += weight * (out.loss.dataSync()[0] as number);
      out.loss.dispose();
      for (const [k, v] of Object.entries(out.parts)) parts[k] = (parts[k] ?? 0) + weight * v;
      for (const [name, grad] of Object.entries(out.grads)) {
        const previous = sum[name];
        const added = tf.tidy(() =>
          previous ? tf.add(previous, tf.mul(grad, weight)) : tf.mul(grad, weight),
        );
        previous?.dispose();
        grad.dispose();
        sum[name] = added;
      }
    }
  } catch (error) {
    tf.dispose(Object.values(sum));
    throw error;
  }
  return { loss, parts, grads: sum };
}

/**
 * One optimizer step on one batch, with gradient accumulation over micro-batches. Throws `NonFiniteLossError`
 * (without touching the parameters) when the loss is NaN or infinite.
 */
export function trainStep(
  model: PeftModel,
  optimizer: Optimizer,
  images: Tensor4D,
  labels: Tensor1D,
  options: TrainStepOptions,
): {
  /** Batch-mean training loss (cross-entropy + weighted auxiliary losses). */
  loss: number;
  /** `ce` and each auxiliary loss (unweighted), batch means. */
  parts: Record<string, number>;
} {
  const { loss, parts, grads } = accumulateGradients(model, images, labels, options);
  try {
    const epoch = options.epoch ?? 0;
    if (!Number.isFinite(loss)) {
      const where = options.step === undefined ? '' : `, step ${options.step}`;
      throw new NonFiniteLossError(
        `non-finite training loss (${loss}) at epoch ${epoch}${where}; the optimizer step was not applied`,
        { epoch, step: options.step ?? -1, loss },
      );
    }
    optimizer.step(model, grads, options.lr);
  } finally {
    tf.dispose(Object.values(grads));
  }
  return { loss, parts };
}
