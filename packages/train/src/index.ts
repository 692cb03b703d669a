export { arrayData, type Batch, type BatchOptions, batchCount, type TrainingData } from './data.js';
export {
  AdamW,
  type AdamWOptions,
  createOptimizer,
  type DecayFilter,
  OPTIMIZER_KINDS,
  type Optimizer,
  type OptimizerKind,
  type OptimizerState,
  Sgd,
  type SgdOptions,
} from './optimizers.js';
export {
  constantSchedule,
  type LrSchedule,
  type StepCosineOptions,
  stepCosineSchedule,
  type TimmCosineOptions,
  timmCosineSchedule,
} from './schedules.js';
export {
  type AccumulatedGradients,
  type AccumulateOptions,
  accumulateGradients,
  NonFiniteLossError,
  type TrainStepOptions,
  trainStep,
} from './step.js';
export {
  type EvalMetrics,
  type EvaluateOptions,
  evaluate,
  type MetricSummary,
  type RankedPrediction,
  summarize,
} from './evaluate.js';
export {
  CHECKPOINT_JSON,
  CHECKPOINT_TENSORS,
  type CheckpointContents,
  type CheckpointInfo,
  checkpointExists,
  readCheckpoint,
} from './checkpoint.js';
export type { RunIdentity } from './identity.js';
export {
  type ResolvedTrainOptions,
  SCHEDULE_KINDS,
  SELECTIONS,
  TRAIN_OPTIONS,
} from './options.js';
export {
  type TrainOptions,
  type TrainResult,
  type TrainRuntimeOptions,
  type TrainSplits,
  train,
} from './trainer.js';
export {
  type VtabOptions,
  type VtabResult,
  type VtabSplits,
  type VtabStage,
  type VtabTrial,
  vtabProtocol,
} from './vtab.js';
export {
  type BestRecord,
  type EpochRecord,
  type EvalSplit,
  FINGERPRINT_KEYS,
  type RunFingerprint,
  type ScheduleKind,
  type Selection,
  TEST_SELECTION_WARNING,
  type TrainEvent,
} from './types.js';
