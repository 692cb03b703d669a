import { invalidOption, requireNumberInRange } from '@peftjs/core';

/** A learning-rate schedule over epochs (`unit: 'epoch'`) or optimizer steps (`unit: 'step'`), both 0-based. */
export interface LrSchedule {
  /** What `t` in `lrAt(t)` counts: epochs or optimizer steps. */
  readonly unit: 'epoch' | 'step';
  /** Learning rate at epoch or step `t` (0-based); a negative or fractional `t` throws `INVALID_OPTION`. */
  lrAt(t: number): number;
}

/** Options of `timmCosineSchedule`; negative rates throw `INVALID_OPTION`. */
export interface TimmCosineOptions {
  /** Peak learning rate η. */
  baseLr: number;
  /** Cosine length t_initial, in epochs. */
  epochs: number;
  /** Epochs of linear warm-up from `warmupLrInit` to `baseLr` (non-negative integer; 0 for none). */
  warmupEpochs: number;
  /** Learning rate at the start of the warm-up. */
  warmupLrInit: number;
  /** Floor the cosine decays to, and the rate after `epochs`. */
  lrMin: number;
}

/** Options of `stepCosineSchedule`; negative rates throw `INVALID_OPTION`. */
export interface StepCosineOptions {
  /** Peak learning rate η. */
  baseLr: number;
  /** Cosine length t_initial, in optimizer steps. */
  totalSteps: number;
  /** Steps of linear warm-up from `warmupLrInit` to `baseLr` (non-negative integer; 0 for none). */
  warmupSteps: number;
  /** Learning rate at step 0 of the warm-up. */
  warmupLrInit: number;
  /** Floor the cosine decays to, and the rate after `totalSteps`. */
  lrMin: number;
}

function nonNegative(option: string, value: number): number {
  return requireNumberInRange(option, value, 0, Number.MAX_VALUE);
}

function checkIndex(unit: string, t: number): void {
  if (!Number.isInteger(t) || t < 0) invalidOption(unit, t, 'a non-negative integer');
}

/** timm's `CosineLRScheduler` value f(t): linear warm-up without prefix, then cosine down to lrMin, then lrMin. */
function timmCosine(
  t: number,
  baseLr: number,
  tInitial: number,
  warmup: number,
  warmupLrInit: number,
  lrMin: number,
): number {
  if (t < warmup) return warmupLrInit + (t * (baseLr - warmupLrInit)) / warmup;
  // cycle_limit = 1: past the first cycle the LR stays at its minimum.
  if (t >= tInitial) return lrMin;
  return lrMin + 0.5 * (baseLr - lrMin) * (1 + Math.cos((Math.PI * t) / tInitial));
}

function checkCosine(
  baseLr: number,
  length: number,
  lengthName: string,
  o: { warmupLrInit: number; lrMin: number },
) {
  nonNegative('lr', baseLr);
  if (!Number.isInteger(length) || length <= 0) invalidOption(lengthName, length, 'a positive integer');
  nonNegative('warmupLrInit', o.warmupLrInit);
  nonNegative('lrMin', o.lrMin);
}

/**
 * The SHIP/NOAH recipe (docs/ship-method.md §8.2): timm's cosine schedule stepped once per epoch, at the end of the epoch. The LR
 * during epoch 0 is `warmupLrInit` (the value timm sets at construction; `baseLr` when there is no warm-up) and the
 * LR during epoch e ≥ 1 is f(e − 1), so epochs 0 and 1 both run at `warmupLrInit`.
 */
export function timmCosineSchedule(options: TimmCosineOptions): LrSchedule {
  const { baseLr, epochs, warmupEpochs, warmupLrInit, lrMin } = options;
  checkCosine(baseLr, epochs, 'epochs', options);
  if (!Number.isInteger(warmupEpochs) || warmupEpochs < 0) {
    invalidOption('warmupEpochs', warmupEpochs, 'a non-negative integer');
  }
  return {
    unit: 'epoch',
    lrAt(epoch: number): number {
      checkIndex('epoch', epoch);
      if (epoch === 0) return warmupEpochs > 0 ? warmupLrInit : baseLr;
      return timmCosine(epoch - 1, baseLr, epochs, warmupEpochs, warmupLrInit, lrMin);
    },
  };
}

/** The same curve evaluated per optimizer step (timm's `step_update`): the LR of step k is f(k). */
export function stepCosineSchedule(options: StepCosineOptions): LrSchedule {
  const { baseLr, totalSteps, warmupSteps, warmupLrInit, lrMin } = options;
  checkCosine(baseLr, totalSteps, 'totalSteps', options);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    invalidOption('warmupSteps', warmupSteps, 'a non-negative integer');
  }
  return {
    unit: 'step',
    lrAt(step: number): number {
      checkIndex('step', step);
      return timmCosine(step, baseLr, totalSteps, warmupSteps, warmupLrInit, lrMin);
    },
  };
}

/** The same learning rate `lr` (≥ 0) at every epoch. */
export function constantSchedule(lr: number): LrSchedule {
  nonNegative('lr', lr);
  return { unit: 'epoch', lrAt: () => lr };
}
