import { join } from 'node:path';
import { invalidOption, type PeftModel } from '@peftjs/core';
import type { TrainingData } from './data.js';
import type { EvalMetrics } from './evaluate.js';
import { type TrainOptions, type TrainResult, train } from './trainer.js';
import type { BestRecord, EpochRecord } from './types.js';

/** The four VTAB-1k lists (NOAH/SSF format): train800 ⊂ train800val200 ⊃ val200, and the full test split. */
export interface VtabSplits {
  readonly train800: TrainingData;
  readonly val200: TrainingData;
  readonly train800val200: TrainingData;
  readonly test: TrainingData;
}

export type VtabStage =
  | { readonly phase: 'select'; readonly candidate: number }
  | { readonly phase: 'final' };

export interface VtabOptions
  extends Omit<TrainOptions, 'selection' | 'resume' | 'stopAfterEpochs' | 'restoreBest' | 'checkpointDir'> {
  /** Hyper-parameter candidates, each overriding the base options; default one candidate (the base options). */
  candidates?: readonly Partial<TrainOptions>[];
  /** Also select the number of epochs (the best val200 epoch); otherwise the full `epochs`. Default true. */
  selectEpochs?: boolean;
  /** Checkpoints of each run go to `select-<i>/` and `final/` under this directory. */
  checkpointDir?: string;
  /** Called when a run starts (events of every run go to the same `onEvent`). */
  onStage?: (stage: VtabStage) => void;
  /** Frees a selection-stage model; default `model.dispose()`. */
  release?: (model: PeftModel) => void;
}

export interface VtabTrial {
  readonly candidate: number;
  readonly best: BestRecord;
  readonly history: readonly EpochRecord[];
}

export interface VtabResult {
  readonly selection: 'val';
  readonly trials: readonly VtabTrial[];
  readonly selected: { readonly candidate: number; readonly epochs: number; readonly valTop1: number };
  /** The train800val200 run. */
  readonly final: TrainResult;
  /** The single test evaluation. */
  readonly test: EvalMetrics;
  /** The final model (trained on train800val200); the caller owns it. */
  readonly model: PeftModel;
}

/**
 * The VTAB-1k protocol without touching the test split for any choice: every candidate trains on train800 and is
 * scored by its best val200 top-1 over the evaluated epochs; the best candidate (first on ties) and, with
 * `selectEpochs`, its best epoch count are then re-run from a fresh model on train800val200 (the same
 * `epochs`-long schedule, stopped after the selected epoch count), and the test split is evaluated ONCE.
 * `createModel` must return a freshly initialised model on every call (identical initialisation for a fair choice).
 */
export async function vtabProtocol(
  createModel: () => PeftModel | Promise<PeftModel>,
  splits: VtabSplits,
  options: VtabOptions,
): Promise<VtabResult> {
  const { candidates = [{}], selectEpochs = true, checkpointDir, onStage, release, ...base } = options;
  if (candidates.length === 0) invalidOption('candidates', candidates, 'a non-empty array');
  const free = release ?? ((model: PeftModel) => model.dispose());
  const trials: VtabTrial[] = [];
  let chosen: { candidate: number; epochs: number; valTop1: number } | null = null;
  for (const [i, candidate] of candidates.entries()) {
    onStage?.({ phase: 'select', candidate: i });
    const model = await createModel();
    try {
      const result = await train(
        model,
        { train: splits.train800, val: splits.val200 },
        {
          ...base,
          ...candidate,
          selection: 'val',
          restoreBest: false,
          ...(checkpointDir !== undefined ? { checkpointDir: join(checkpointDir, `select-${i}`) } : {}),
        },
      );
      trials.push({ candidate: i, best: result.best, history: result.history });
      const top1 = result.best.metric ?? Number.NEGATIVE_INFINITY;
      if (chosen === null || top1 > chosen.valTop1) {
        const epochs = candidate.epochs ?? base.epochs;
        chosen = { candidate: i, epochs: selectEpochs ? result.best.epoch + 1 : epochs, valTop1: top1 };
      }
    } finally {
      free(model);
    }
  }
  const selected = chosen as { candidate: number; epochs: number; valTop1: number };
  onStage?.({ phase: 'final' });
  const model = await createModel();
  try {
    const final = await train(
      model,
      { train: splits.train800val200, test: splits.test },
      {
        ...base,
        ...candidates[selected.candidate],
        selection: 'val',
        stopAfterEpochs: selected.epochs,
        ...(checkpointDir !== undefined ? { checkpointDir: join(checkpointDir, 'final') } : {}),
      },
    );
    return { selection: 'val', trials, selected, final, test: final.final.test as EvalMetrics, model };
  } catch (error) {
    free(model);
    throw error;
  }
}
