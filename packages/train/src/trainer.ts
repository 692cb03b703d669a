import { invalidOption, PeftError, type PeftModel, parseOptions, type z } from '@peftjs/core';
import type { HostTensor } from '@peftjs/core/safetensors';
import {
  assignTrainable,
  type CheckpointInfo,
  readCheckpoint,
  snapshotTrainable,
  tensorsWithPrefix,
  writeCheckpoint,
} from './checkpoint.js';
import { batchCount, type TrainingData } from './data.js';
import { type EvalMetrics, evaluate, summarize } from './evaluate.js';
import { createOptimizer, type DecayFilter, type Optimizer } from './optimizers.js';
import { type ResolvedTrainOptions, TRAIN_OPTIONS } from './options.js';
import { constantSchedule, type LrSchedule, stepCosineSchedule, timmCosineSchedule } from './schedules.js';
import { type RunIdentity, checkIdentity, runIdentity } from './identity.js';
import { NonFiniteLossError, trainStep } from './step.js';
import {
  type BestRecord,
  type EpochRecord,
  type EvalSplit,
  FINGERPRINT_KEYS,
  type RunFingerprint,
  type Selection,
  TEST_SELECTION_WARNING,
  type TrainEvent,
} from './types.js';

/** The data `train` uses; every split must have the training split's `numClasses`. */
export interface TrainSplits {
  /** Training data, shuffled each epoch by (seed, epoch). */
  readonly train: TrainingData;
  /** Validation data: evaluated on evaluation epochs and used for `'val'` selection. */
  readonly val?: TrainingData;
  /**
   * Test data: evaluated once at the end with `'val'` selection, or every evaluation epoch with
   * `'max-test-over-epochs'` (then required).
   */
  readonly test?: TrainingData;
}

/**
 * Options of `train`: the JSON options of `TRAIN_OPTIONS` (all optional, with its defaults; unknown keys and
 * invalid values throw `INVALID_OPTION` before any step) plus the `TrainRuntimeOptions`, which are not data.
 * Every option that changes the numbers a run produces is recorded in `RunFingerprint` and must match when
 * resuming.
 */
export type TrainOptions = z.input<typeof TRAIN_OPTIONS> & TrainRuntimeOptions;

/** The options of `train` that are not data: a decay filter, the checkpoint folder, an abort signal, events. */
export interface TrainRuntimeOptions {
  /** Replaces the registry's `decay` flag (not stored in checkpoints: pass the same filter when resuming). */
  decayFilter?: DecayFilter;
  /**
   * Directory for `checkpoint.json` and `checkpoint.safetensors` (overwritten at each save); no checkpoints
   * without it.
   */
  checkpointDir?: string;
  /** Checked before every step; an abort throws `signal.reason` (the last epoch-end checkpoint stays valid). */
  signal?: AbortSignal;
  /**
   * Receives progress events in order (see `TrainEvent`). Training waits for a returned promise, so a listener that
   * writes the events somewhere (a log file) stops the run with its error when a write fails, instead of losing it.
   */
  onEvent?: (event: TrainEvent) => void | Promise<void>;
}

/** What `train` returns. */
export interface TrainResult {
  /** How `best` was chosen. */
  readonly selection: Selection;
  /** `TEST_SELECTION_WARNING` when the test split was used for selection. */
  readonly selectionWarning?: string;
  /** The selected epoch and its metric (`metric: null` when nothing could be selected). */
  readonly best: BestRecord;
  /** Every completed epoch, including those of earlier runs when resumed. */
  readonly history: readonly EpochRecord[];
  /**
   * `'val'`: validation metrics at the best epoch and ONE test evaluation of the selected parameters.
   * `'max-test-over-epochs'`: the test metrics of the best test epoch.
   */
  readonly final: {
    /** Validation metrics of the selected epoch (`'val'` selection with a validation split). */
    readonly val?: EvalMetrics;
    /** Test metrics, when a test split was given. */
    readonly test?: EvalMetrics;
  };
  /** Epochs completed in total (less than `epochs` when stopped by `stopAfterEpochs`). */
  readonly epochsCompleted: number;
  /** Optimizer steps taken in total. */
  readonly globalStep: number;
}

interface RunState {
  epochsCompleted: number;
  globalStep: number;
  history: EpochRecord[];
  best: BestRecord | null;
  bestMetrics: EvalMetrics | null;
  bestParams: Record<string, HostTensor> | null;
  /** Epochs completed by the newest checkpoint on disk (loaded or written); null when there is none. */
  savedEpochs: number | null;
}

function fingerprint(options: ResolvedTrainOptions, trainSize: number): RunFingerprint {
  return {
    ...Object.fromEntries(FINGERPRINT_KEYS.map((key) => [key, options[key]])),
    trainSize,
  } as RunFingerprint;
}

function makeSchedule(run: RunFingerprint, stepsPerEpoch: number): LrSchedule {
  const common = { baseLr: run.lr, warmupLrInit: run.warmupLrInit, lrMin: run.lrMin };
  if (run.schedule === 'constant') return constantSchedule(run.lr);
  if (run.schedule === 'cosine-step') {
    return stepCosineSchedule({
      ...common,
      totalSteps: run.epochs * stepsPerEpoch,
      warmupSteps: run.warmupEpochs * stepsPerEpoch,
    });
  }
  return timmCosineSchedule({ ...common, epochs: run.epochs, warmupEpochs: run.warmupEpochs });
}

function checkSplits(model: PeftModel, splits: TrainSplits, selection: Selection): void {
  if (!splits.train) invalidOption('train', splits.train, 'a TrainingData');
  const classes = splits.train.numClasses;
  for (const split of ['val', 'test'] as const) {
    const data = splits[split];
    if (data && data.numClasses !== classes) {
      invalidOption(`${split}.numClasses`, data.numClasses, `equal to train.numClasses (${classes})`);
    }
  }
  if (selection === 'max-test-over-epochs' && !splits.test) {
    invalidOption('selection', selection, '"val" when no test split is given');
  }
  if (model.registry.trainableEntries().length === 0) {
    throw new PeftError('PARAMETER_INVALID', 'the model has no trainable parameters');
  }
}

function mismatch(saved: RunFingerprint, current: RunFingerprint, dir: string): string | null {
  for (const key of Object.keys(current) as (keyof RunFingerprint)[]) {
    if (JSON.stringify(saved[key]) !== JSON.stringify(current[key])) {
      return (
        `cannot resume from ${dir}: option "${key}" was ${JSON.stringify(saved[key])} when the checkpoint was ` +
        `written and is ${JSON.stringify(current[key])} now`
      );
    }
  }
  return null;
}

async function resumeFrom(
  dir: string,
  model: PeftModel,
  optimizer: Optimizer,
  run: RunFingerprint,
  identity: RunIdentity,
): Promise<RunState> {
  const { info, file } = await readCheckpoint(dir);
  const problem = mismatch(info.options, run, dir);
  if (problem) throw new PeftError('INVALID_OPTION', problem);
  checkIdentity(info.identity, identity, dir);
  const params = tensorsWithPrefix(file, 'param/');
  const expected = model.registry.trainableEntries().map((e) => e.name);
  for (const name of expected) {
    if (!params[name]) {
      throw new PeftError(
        'WEIGHTS_MISMATCH',
        `${file.source}: no tensor "param/${name}" for a trainable parameter`,
      );
    }
  }
  for (const name of Object.keys(params)) {
    if (!expected.includes(name)) {
      throw new PeftError('WEIGHTS_MISMATCH', `${file.source}: "param/${name}" is not a trainable parameter`);
    }
  }
  assignTrainable(model, params, file.source);
  optimizer.loadState({ ...info.optimizer, tensors: tensorsWithPrefix(file, 'opt/') });
  model.forwardCounter = info.forwardCounter;
  return {
    epochsCompleted: info.epochsCompleted,
    globalStep: info.globalStep,
    history: [...info.history],
    best: info.best,
    bestMetrics: info.bestMetrics,
    bestParams: info.hasBestParams ? tensorsWithPrefix(file, 'best/') : null,
    savedEpochs: info.epochsCompleted,
  };
}

function keptCheckpoint(state: RunState, dir: string | undefined): string {
  return state.savedEpochs === null || dir === undefined
    ? 'no checkpoint had been written'
    : `the last good checkpoint (after epoch ${state.savedEpochs - 1}) in ${dir} was kept`;
}

/**
 * Trains `model` for `options.epochs` epochs: shuffled batches in an order fixed by (seed, epoch), one optimizer
 * step per batch (micro-batched when asked), the learning rate from the schedule, evaluation every `evalEvery`
 * epochs and model selection as `options.selection` says. Emits events; prints nothing.
 */
export async function train(
  model: PeftModel,
  splits: TrainSplits,
  options: TrainOptions,
): Promise<TrainResult> {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  const emit = async (event: TrainEvent): Promise<void> => {
    await options.onEvent?.(event);
  };
  const { decayFilter, checkpointDir: dir, signal, onEvent: _onEvent, ...json } = options;
  const parsed = parseOptions(TRAIN_OPTIONS, json, 'train');
  const run = fingerprint(parsed, splits.train?.size ?? 0);
  checkSplits(model, splits, run.selection);
  // Recorded by checkpoints (and checked on resume) only: hashing the base is not free.
  const identity = dir !== undefined ? runIdentity(model, splits) : null;
  const stopAt = Math.min(run.epochs, parsed.stopAfterEpochs ?? run.epochs);
  const evalBatchSize = parsed.evalBatchSize ?? run.batchSize;
  const checkpointEvery = parsed.checkpointEvery;
  if (parsed.resume && dir === undefined) invalidOption('resume', true, 'used together with checkpointDir');
  const stepsPerEpoch = batchCount(splits.train.size, run.batchSize, run.dropLast);
  if (stepsPerEpoch === 0) {
    invalidOption(
      'batchSize',
      run.batchSize,
      `at most the training set size (${splits.train.size}) with dropLast`,
    );
  }
  const schedule = makeSchedule(run, stepsPerEpoch);
  const optimizer = createOptimizer(run.optimizer, {
    lr: run.lr,
    weightDecay: run.weightDecay,
    momentum: run.momentum,
    nesterov: run.nesterov,
    betas: run.betas,
    eps: run.eps,
    ...(decayFilter ? { decayFilter } : {}),
  });
  let st: RunState = {
    epochsCompleted: 0,
    globalStep: 0,
    history: [],
    best: null,
    bestMetrics: null,
    bestParams: null,
    savedEpochs: null,
  };
  try {
    signal?.throwIfAborted();
    if (parsed.resume && dir !== undefined) {
      st = await resumeFrom(dir, model, optimizer, run, identity as RunIdentity);
      await emit({ type: 'resume', epoch: st.epochsCompleted, step: st.globalStep, dir });
    }
    for (let epoch = st.epochsCompleted; epoch < stopAt; epoch++) {
      await trainEpoch(epoch);
      if (epoch % run.evalEvery === 0 || epoch === run.epochs - 1) await evaluateEpoch(epoch);
      st.epochsCompleted = epoch + 1;
      if (dir !== undefined && (st.epochsCompleted % checkpointEvery === 0 || epoch === stopAt - 1)) {
        await save(dir, epoch);
      }
    }
    return await finish();
  } finally {
    optimizer.dispose();
  }

  async function trainEpoch(epoch: number): Promise<void> {
    const epochStart = performance.now();
    const epochLr = schedule.unit === 'epoch' ? schedule.lrAt(epoch) : schedule.lrAt(st.globalStep);
    await emit({ type: 'epoch-start', epoch, lr: epochLr, steps: stepsPerEpoch, elapsedMs: elapsed() });
    let steps = 0;
    let lossSum = 0;
    const partSums: Record<string, number> = {};
    const batches = splits.train.batches({
      batchSize: run.batchSize,
      shuffle: true,
      seed: run.seed,
      epoch,
      dropLast: run.dropLast,
    });
    for await (const { images, labels } of batches) {
      signal?.throwIfAborted();
      const lr = schedule.unit === 'epoch' ? epochLr : schedule.lrAt(st.globalStep);
      let out: { loss: number; parts: Record<string, number> };
      try {
        out = trainStep(model, optimizer, images, labels, {
          lr,
          epoch,
          step: st.globalStep,
          ...(run.microBatch !== null ? { microBatch: run.microBatch } : {}),
        });
      } catch (error) {
        if (!(error instanceof NonFiniteLossError)) throw error;
        throw new NonFiniteLossError(
          `training stopped: non-finite loss (${error.loss}) at epoch ${epoch}, step ${st.globalStep} ` +
            `(batch ${steps} of the epoch); the update was not applied and ${keptCheckpoint(st, dir)}`,
          { epoch, step: st.globalStep, loss: error.loss },
        );
      }
      await emit({
        type: 'step',
        epoch,
        step: st.globalStep,
        lr,
        loss: out.loss,
        parts: out.parts,
        elapsedMs: elapsed(),
      });
      st.globalStep++;
      steps++;
      lossSum += out.loss;
      for (const [k, v] of Object.entries(out.parts)) partSums[k] = (partSums[k] ?? 0) + v;
    }
    const mean = (x: number) => (steps === 0 ? Number.NaN : x / steps);
    const parts = Object.fromEntries(Object.entries(partSums).map(([k, v]) => [k, mean(v)]));
    const record: EpochRecord = {
      epoch,
      lr: epochLr,
      loss: mean(lossSum),
      parts,
      steps,
      elapsedMs: performance.now() - epochStart,
    };
    st.history.push(record);
    await emit({
      type: 'epoch-end',
      epoch,
      lr: epochLr,
      loss: record.loss,
      parts,
      steps,
      elapsedMs: elapsed(),
    });
  }

  async function evaluateEpoch(epoch: number): Promise<void> {
    const index = st.history.length - 1;
    const record = st.history[index] as EpochRecord;
    const results: Partial<Record<EvalSplit, EvalMetrics>> = {};
    for (const split of ['val', 'test'] as const) {
      const data = splits[split];
      // The test split is only looked at during training when selection on it was asked for.
      if (!data || (split === 'test' && run.selection !== 'max-test-over-epochs')) continue;
      const metrics = await evaluate(model, data, { batchSize: evalBatchSize });
      results[split] = metrics;
      await emit({ type: 'eval', epoch, split, metrics: summarize(metrics), elapsedMs: elapsed() });
    }
    st.history[index] = {
      ...record,
      ...(results.val ? { val: summarize(results.val) } : {}),
      ...(results.test ? { test: summarize(results.test) } : {}),
    };
    const split: EvalSplit = run.selection === 'val' ? 'val' : 'test';
    const selected = results[split];
    if (selected && (st.best?.metric == null || selected.top1 > st.best.metric)) {
      st.best = { epoch, metric: selected.top1, split };
      st.bestMetrics = selected;
      // Parameters are only worth keeping when they will be restored.
      if (split === 'val') st.bestParams = snapshotTrainable(model);
    }
  }

  async function save(directory: string, epoch: number): Promise<void> {
    const info: Omit<CheckpointInfo, 'format' | 'version' | 'optimizer' | 'hasBestParams'> = {
      epochsCompleted: st.epochsCompleted,
      globalStep: st.globalStep,
      forwardCounter: model.forwardCounter,
      shuffle: { seed: run.seed, nextEpoch: st.epochsCompleted },
      history: st.history,
      best: st.best,
      bestMetrics: st.bestMetrics,
      options: run,
      ...(identity ? { identity } : {}),
    };
    const { nonFinite } = await writeCheckpoint(directory, model, optimizer, info, st.bestParams);
    if (nonFinite !== null) {
      throw new NonFiniteLossError(
        `training stopped: tensor "${nonFinite}" is not finite after epoch ${epoch} (step ${st.globalStep}); ` +
          `no checkpoint was written and ${keptCheckpoint(st, directory)}`,
        { epoch, step: st.globalStep, loss: st.history[st.history.length - 1]?.loss ?? Number.NaN },
      );
    }
    st.savedEpochs = st.epochsCompleted;
    await emit({ type: 'checkpoint', epoch, dir: directory, elapsedMs: elapsed() });
  }

  async function finish(): Promise<TrainResult> {
    const final: { val?: EvalMetrics; test?: EvalMetrics } = {};
    let best: BestRecord = st.best ?? { epoch: st.epochsCompleted - 1, metric: null, split: null };
    if (run.selection === 'val') {
      if (st.best && st.bestMetrics) {
        final.val = st.bestMetrics;
        if (st.bestParams && parsed.restoreBest) assignTrainable(model, st.bestParams, 'best epoch');
      } else {
        best = { epoch: st.epochsCompleted - 1, metric: null, split: null };
      }
      if (splits.test) final.test = await evaluate(model, splits.test, { batchSize: evalBatchSize });
    } else if (st.bestMetrics) {
      final.test = st.bestMetrics;
    }
    await emit({ type: 'done', best, epochsCompleted: st.epochsCompleted, elapsedMs: elapsed() });
    return {
      selection: run.selection,
      ...(run.selection === 'max-test-over-epochs' ? { selectionWarning: TEST_SELECTION_WARNING } : {}),
      best,
      history: st.history,
      final,
      epochsCompleted: st.epochsCompleted,
      globalStep: st.globalStep,
    };
  }
}
