import type { MetricSummary } from './evaluate.js';
import type { ResolvedTrainOptions, SCHEDULE_KINDS, SELECTIONS } from './options.js';

/** One of `SELECTIONS`. */
export type Selection = (typeof SELECTIONS)[number];

/** `TrainResult.selectionWarning` of a run that selected on the test split (`'max-test-over-epochs'`). */
export const TEST_SELECTION_WARNING = 'selected on the test split (optimistic; as the official SHIP code)';

/** One of `SCHEDULE_KINDS`. */
export type ScheduleKind = (typeof SCHEDULE_KINDS)[number];

/** A split the trainer evaluates and can select on. */
export type EvalSplit = 'val' | 'test';

/** One training epoch in a run's history. */
export interface EpochRecord {
  /** 0-based epoch index. */
  readonly epoch: number;
  /** LR of the epoch's first step. */
  readonly lr: number;
  /** Mean over the epoch's steps of the batch-mean training loss, and of each named part. */
  readonly loss: number;
  /** Per-part means (`ce` and each auxiliary loss), over the epoch's steps. */
  readonly parts: Readonly<Record<string, number>>;
  /** Optimizer steps taken in the epoch. */
  readonly steps: number;
  /** Wall-clock time of the epoch (training only). */
  readonly elapsedMs: number;
  /** Validation metrics, on epochs that were evaluated and when a validation split was given. */
  readonly val?: MetricSummary;
  /** Test metrics, on evaluated epochs; only recorded with `'max-test-over-epochs'` selection. */
  readonly test?: MetricSummary;
}

/** The epoch a run reports. */
export interface BestRecord {
  /** 0-based epoch of the selected parameters (the last completed epoch when nothing was selected). */
  readonly epoch: number;
  /** Top-1 accuracy on `split` at `epoch`; null when nothing was selected (no validation split). */
  readonly metric: number | null;
  /** The split selection was made on; null when nothing was selected. */
  readonly split: EvalSplit | null;
}

/** The `train` options that determine the numbers a run produces, in the order checkpoints record them. */
export const FINGERPRINT_KEYS = [
  'epochs',
  'batchSize',
  'microBatch',
  'optimizer',
  'lr',
  'weightDecay',
  'momentum',
  'nesterov',
  'betas',
  'eps',
  'schedule',
  'warmupEpochs',
  'warmupLrInit',
  'lrMin',
  'seed',
  'dropLast',
  'evalEvery',
  'selection',
] as const satisfies readonly (keyof ResolvedTrainOptions)[];

/**
 * What a checkpoint records of a run (`FINGERPRINT_KEYS` of the parsed options, and the training set size); a
 * resumed run must match it.
 */
export type RunFingerprint = Readonly<Pick<ResolvedTrainOptions, (typeof FINGERPRINT_KEYS)[number]>> & {
  /** Number of training examples. */
  readonly trainSize: number;
};

/**
 * Progress events `train` emits through `TrainOptions.onEvent`, discriminated by `type`, in this order:
 * `resume` (when resuming), then per epoch `epoch-start`, one `step` per optimizer step, `epoch-end`, `eval`
 * per evaluated split, `checkpoint` (when saved); finally `done`. Every `elapsedMs` counts from the start of
 * this `train` call.
 */
export type TrainEvent =
  | {
      /** Training continues from a checkpoint. */
      readonly type: 'resume';
      /** Epochs already completed: the epoch training resumes at. */
      readonly epoch: number;
      /** Optimizer steps already taken. */
      readonly step: number;
      /** The checkpoint directory read. */
      readonly dir: string;
    }
  | {
      /** An epoch begins. */
      readonly type: 'epoch-start';
      /** 0-based epoch index. */
      readonly epoch: number;
      /** Learning rate of the epoch's first step. */
      readonly lr: number;
      /** Optimizer steps the epoch will take. */
      readonly steps: number;
      /** Milliseconds since `train` was called. */
      readonly elapsedMs: number;
    }
  | {
      /** One optimizer step was applied. */
      readonly type: 'step';
      /** 0-based epoch index. */
      readonly epoch: number;
      /** Global step index (0-based). */
      readonly step: number;
      /** Learning rate used for this step. */
      readonly lr: number;
      /** Total training loss of the batch (cross-entropy + weighted auxiliary losses). */
      readonly loss: number;
      /** `ce` and each auxiliary loss, unweighted. */
      readonly parts: Readonly<Record<string, number>>;
      /** Milliseconds since `train` was called. */
      readonly elapsedMs: number;
    }
  | {
      /** An epoch's training steps are done (before its evaluation). */
      readonly type: 'epoch-end';
      /** 0-based epoch index. */
      readonly epoch: number;
      /** Learning rate of the epoch's first step. */
      readonly lr: number;
      /** Mean training loss over the epoch's steps. */
      readonly loss: number;
      /** Mean of each loss part over the epoch's steps. */
      readonly parts: Readonly<Record<string, number>>;
      /** Optimizer steps taken in the epoch. */
      readonly steps: number;
      /** Milliseconds since `train` was called. */
      readonly elapsedMs: number;
    }
  | {
      /** A split was evaluated after an epoch. */
      readonly type: 'eval';
      /** 0-based epoch index. */
      readonly epoch: number;
      /** The split evaluated. */
      readonly split: EvalSplit;
      /** Its accuracies and example count. */
      readonly metrics: MetricSummary;
      /** Milliseconds since `train` was called. */
      readonly elapsedMs: number;
    }
  | {
      /** A checkpoint was written. */
      readonly type: 'checkpoint';
      /** 0-based index of the last epoch it contains. */
      readonly epoch: number;
      /** The checkpoint directory. */
      readonly dir: string;
      /** Milliseconds since `train` was called. */
      readonly elapsedMs: number;
    }
  | {
      /** Training finished (or stopped after `stopAfterEpochs`). */
      readonly type: 'done';
      /** The selected epoch. */
      readonly best: BestRecord;
      /** Epochs completed in total, earlier runs included. */
      readonly epochsCompleted: number;
      /** Milliseconds since `train` was called. */
      readonly elapsedMs: number;
    };
