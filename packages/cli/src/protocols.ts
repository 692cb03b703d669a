import type { VisionTransformer } from '@peftjs/backbone';
import { type FitOutcome, type PeftModel, type PeftPlugin, createPeftModel } from '@peftjs/core';
import { type ImageDataset, asPrepareData } from '@peftjs/data';
import {
  type TrainOptions,
  type TrainResult,
  type VtabOptions,
  checkpointExists,
  train,
  vtabProtocol,
} from '@peftjs/train';
import type { ResolvedRun } from './config.js';
import type { RunData as SplitData } from './data-source.js';
import type { Progress } from './progress.js';
import type { RunFolder } from './run-folder.js';

/** The run's datasets and the backbone every model of the run shares. */
export type RunData = SplitData & { readonly backbone: VisionTransformer };

/** What a training protocol leaves: the final model, its result and the history of every run. */
export interface Fitted {
  readonly model: PeftModel;
  readonly result: TrainResult;
  readonly histories: { label: string; history: TrainResult['history'] }[];
  /** What the protocol chose on val200 (vtab, select): the epoch count and its validation top-1. */
  readonly validation?: { readonly top1: number | null; readonly bestEpoch: number; readonly epochs: number };
  /** What a method that fits without training (`fit`) decided. */
  readonly fit?: FitOutcome;
}

/** The run's plugins, built from its method and options. */
export function methodPlugins(run: ResolvedRun): PeftPlugin[] {
  return [run.method.create(run.config.method.options)].flat();
}

/** The plugins of `model` that run a data pass before training. */
export const preparing = (model: PeftModel) => model.plugins.filter((p) => p.prepare).map((p) => p.name);

/** A validation top-1 for messages. */
export const formatTop1 = (top1: number | null) =>
  top1 === null || !Number.isFinite(top1) ? 'n/a' : `${(top1 * 100).toFixed(2)} %`;

/** What every protocol trains with. */
interface ProtocolContext {
  readonly run: ResolvedRun;
  readonly data: RunData;
  readonly progress: Progress;
  /** `train()` options from the config (the vtab protocol sets selection, stops and restores itself). */
  readonly options: VtabOptions & TrainOptions;
  readonly checkpoints: string;
  /** Continue from the folder's checkpoint (asked for, and one exists); a run that never saved one starts over. */
  readonly resume: boolean;
  /** A fresh model with the run's seed, its data pass run on `prepareOn.split`. */
  readonly makeModel: () => Promise<PeftModel>;
  readonly prepareOn: { split: ImageDataset };
}

/**
 * Trains by the configured protocol (a method that fits without gradient steps goes to `fitReference` instead).
 * Every model is built fresh with the same seed and runs the method's data
 * pass on the split it trains on (train800 for selection, train+val for the final fit).
 */
export async function fitModel(
  run: ResolvedRun,
  data: RunData,
  folder: RunFolder,
  progress: Progress,
): Promise<Fitted> {
  const { config } = run;
  const prepareOn = { split: data.select };
  const makeModel = async (): Promise<PeftModel> => {
    const model = createPeftModel(data.backbone, methodPlugins(run), {
      seed: config.seed,
      numClasses: data.numClasses,
    });
    const on = prepareOn.split;
    if (preparing(model).length > 0) {
      await progress.timed(`preparing ${preparing(model).join(', ')} on ${on.size} images`, () =>
        model.prepare(asPrepareData(on, config.train.batchSize)),
      );
    }
    return model;
  };
  const { protocol, ...trainConfig } = config.train;
  const onEvent: TrainOptions['onEvent'] = (event) => {
    progress.trainEvent(event, config.train.epochs);
    return folder.log({ ...event });
  };
  const checkpoints = folder.path('checkpoints');
  const context: ProtocolContext = {
    run,
    data,
    progress,
    options: { ...trainConfig, seed: config.seed, onEvent },
    checkpoints,
    resume: config.train.resume && (await checkpointExists(checkpoints)),
    makeModel,
    prepareOn,
  };
  if (protocol === 'single' || protocol === 'refit') return fitOnTrainval(context, protocol);
  if (protocol === 'select') return fitSelection(context);
  return fitVtab(context);
}

/**
 * single: train on train+val, select by the configured rule; refit: vtab's final stage — no validation split, the
 * schedule stopped after stopAfterEpochs. The test split is evaluated once, by the caller.
 */
async function fitOnTrainval(c: ProtocolContext, protocol: 'single' | 'refit'): Promise<Fitted> {
  c.prepareOn.split = c.data.trainval;
  const model = await c.makeModel();
  const splits =
    protocol === 'single'
      ? { train: c.data.trainval, val: c.data.val, test: c.data.test }
      : { train: c.data.trainval };
  const result = await train(model, splits, {
    ...c.options,
    ...(protocol === 'refit' ? { selection: 'val' as const } : {}),
    checkpointDir: c.checkpoints,
    resume: c.resume,
  });
  return {
    model,
    result,
    histories: [{ label: protocol === 'refit' ? 'refit' : 'train', history: result.history }],
  };
}

/** select: train on train800, choose the epoch on val200; the test split is never read. */
async function fitSelection(c: ProtocolContext): Promise<Fitted> {
  const model = await c.makeModel();
  const result = await train(
    model,
    { train: c.data.select, val: c.data.val },
    { ...c.options, selection: 'val', checkpointDir: c.checkpoints, resume: c.resume },
  );
  const best = result.best;
  c.progress.line(`selection: best val200 top-1 ${formatTop1(best.metric)} at epoch ${best.epoch} (0-based)`);
  return {
    model,
    result,
    histories: [{ label: 'select', history: result.history }],
    validation: { top1: best.metric, bestEpoch: best.epoch, epochs: best.epoch + 1 },
  };
}

/** vtab: choose the epoch count on val200 after training on train800, then fit on train800val200. */
async function fitVtab(c: ProtocolContext): Promise<Fitted> {
  const { selection: _s, stopAfterEpochs: _a, restoreBest: _b, ...options } = c.options;
  const outcome = await vtabProtocol(
    c.makeModel,
    { train800: c.data.select, val200: c.data.val, train800val200: c.data.trainval, test: c.data.test },
    {
      ...options,
      checkpointDir: c.checkpoints,
      onStage: (stage) => {
        c.prepareOn.split = stage.phase === 'final' ? c.data.trainval : c.data.select;
        c.progress.line(
          stage.phase === 'final'
            ? 'final fit on train+val'
            : 'selection run: train on train split, score on val',
        );
      },
    },
  );
  const histories = outcome.trials.map((trial) => ({
    label: `select ${trial.candidate}`,
    history: trial.history,
  }));
  histories.push({ label: 'final', history: outcome.final.history });
  const { selected } = outcome;
  c.progress.line(
    `selection chose ${selected.epochs} epoch(s) (best val200 top-1 ${formatTop1(selected.valTop1)}); final fit on train+val`,
  );
  return {
    model: outcome.model,
    result: outcome.final,
    histories,
    validation: {
      top1: Number.isFinite(selected.valTop1) ? selected.valTop1 : null,
      bestEpoch: selected.epochs - 1,
      epochs: selected.epochs,
    },
  };
}
