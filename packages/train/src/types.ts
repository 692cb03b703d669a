import type { Seed } from '@peftjs/core';
import type { MetricSummary } from './evaluate.js';
import type { OptimizerKind } from './optimizers.js';

/**
 * How the reported epoch is chosen. `'val'` selects on the validation split (the test split is evaluated once, at
 * the end). `'max-test-over-epochs'` reports the best test accuracy over the evaluated epochs, as the official
 * SHIP/NOAH code does: optimistic, allowed only when named explicitly.
 */
export type Selection = 'val' | 'max-test-over-epochs';

export const TEST_SELECTION_WARNING = 'selected on the test split (optimistic; as the official SHIP code)';

export type ScheduleKind = 'cosine-epoch' | 'cosine-step' | 'constant';

export type EvalSplit = 'val' | 'test';

export interface EpochRecord {
  readonly epoch: number;
  /** LR of the epoch's first step. */
  readonly lr: number;
  /** Mean over the epoch's steps of the batch-mean training loss, and of each named part. */
  readonly loss: number;
  readonly parts: Readonly<Record<string, number>>;
  readonly steps: number;
  /** Wall-clock time of the epoch (training only). */
  readonly elapsedMs: number;
  readonly val?: MetricSummary;
  readonly test?: MetricSummary;
}

export interface BestRecord {
  readonly epoch: number;
  /** Top-1 accuracy on `split` at `epoch`; null when nothing was selected (no validation split). */
  readonly metric: number | null;
  readonly split: EvalSplit | null;
}

/** The options that determine the numbers a run produces; a resumed run must match them. */
export interface RunFingerprint {
  readonly epochs: number;
  readonly batchSize: number;
  readonly microBatch: number | null;
  readonly optimizer: OptimizerKind;
  readonly lr: number;
  readonly weightDecay: number;
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly schedule: ScheduleKind;
  readonly warmupEpochs: number;
  readonly warmupLrInit: number;
  readonly lrMin: number;
  readonly seed: Seed;
  readonly dropLast: boolean;
  readonly evalEvery: number;
  readonly selection: Selection;
  readonly trainSize: number;
}

export type TrainEvent =
  | { readonly type: 'resume'; readonly epoch: number; readonly step: number; readonly dir: string }
  | {
      readonly type: 'epoch-start';
      readonly epoch: number;
      readonly lr: number;
      readonly steps: number;
      readonly elapsedMs: number;
    }
  | {
      readonly type: 'step';
      readonly epoch: number;
      /** Global step index (0-based). */
      readonly step: number;
      readonly lr: number;
      readonly loss: number;
      readonly parts: Readonly<Record<string, number>>;
      readonly elapsedMs: number;
    }
  | {
      readonly type: 'epoch-end';
      readonly epoch: number;
      readonly lr: number;
      readonly loss: number;
      readonly parts: Readonly<Record<string, number>>;
      readonly steps: number;
      readonly elapsedMs: number;
    }
  | {
      readonly type: 'eval';
      readonly epoch: number;
      readonly split: EvalSplit;
      readonly metrics: MetricSummary;
      readonly elapsedMs: number;
    }
  | { readonly type: 'checkpoint'; readonly epoch: number; readonly dir: string; readonly elapsedMs: number }
  | {
      readonly type: 'done';
      readonly best: BestRecord;
      readonly epochsCompleted: number;
      readonly elapsedMs: number;
    };
