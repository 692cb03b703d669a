import { invalidOption, type PeftModel } from '@peftjs/core';
import type { TrainingData } from './data.js';
import type { EvalMetrics } from './evaluate.js';
import { checkpointExists } from './checkpoint.js';
import { type TrainOptions, type TrainResult, train } from './trainer.js';
import type { BestRecord, EpochRecord } from './types.js';

/** The four VTAB-1k lists (NOAH/SSF format): train800 ⊂ train800val200 ⊃ val200, and the full test split. */
export interface VtabSplits {
  /** The 800 training images: candidates are trained on it. */
  readonly train800: TrainingData;
  /** The 200 validation images: candidates (and their epoch count) are selected on it. */
  readonly val200: TrainingData;
  /** The union of both: the selected configuration is re-trained on it. */
  readonly train800val200: TrainingData;
  /** The test split, evaluated once by the final run. */
  readonly test: TrainingData;
}

/** Which run of `vtabProtocol` is starting: the selection run of candidate `candidate`, or the final run. */
export type VtabStage =
  | {
      /** A selection run on train800, scored on val200. */
      readonly phase: 'select';
      /** Index of the candidate being trained. */
      readonly candidate: number;
    }
  | {
      /** The final run on train800val200. */
      readonly phase: 'final';
    };

/**
 * Options of `vtabProtocol`: the `train` options shared by every run (selection is always `'val'`), plus the
 * candidates to choose from.
 */
export interface VtabOptions
  extends Omit<TrainOptions, 'selection' | 'resume' | 'stopAfterEpochs' | 'restoreBest' | 'checkpointDir'> {
  /** Hyper-parameter candidates, each overriding the base options; default one candidate (the base options). */
  candidates?: readonly Partial<TrainOptions>[];
  /** Also select the number of epochs (the best val200 epoch); otherwise the full `epochs`. Default true. */
  selectEpochs?: boolean;
  /** Checkpoints of each run go to `select-<i>/` and `final/` under this directory. */
  checkpointDir?: string;
  /**
   * Continue an interrupted protocol from `checkpointDir`: each run with a checkpoint resumes from it (a finished
   * run just reloads its result), the others start; every resumed run must match its checkpoint (see `train`).
   */
  resume?: boolean;
  /** Called when a run starts (events of every run go to the same `onEvent`). */
  onStage?: (stage: VtabStage) => void;
  /** Frees a selection-stage model; default `model.dispose()`. */
  release?: (model: PeftModel) => void;
}

/** The selection run of one candidate. */
export interface VtabTrial {
  /** Index of the candidate in `VtabOptions.candidates`. */
  readonly candidate: number;
  /** Its best val200 epoch and top-1. */
  readonly best: BestRecord;
  /** Every epoch of its train800 run. */
  readonly history: readonly EpochRecord[];
}

/** What `vtabProtocol` returns. */
export interface VtabResult {
  /** Always `'val'`: the test split played no part in any choice. */
  readonly selection: 'val';
  /** One trial per candidate, in order. */
  readonly trials: readonly VtabTrial[];
  /** The chosen configuration. */
  readonly selected: {
    /** Index of the chosen candidate (the first one on ties). */
    readonly candidate: number;
    /** Epochs the final run trains: its best val200 epoch + 1 with `selectEpochs`, else `epochs`. */
    readonly epochs: number;
    /** Its best val200 top-1 accuracy (−Infinity when it was never evaluated). */
    readonly valTop1: number;
  };
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
  const {
    candidates = [{}],
    selectEpochs = true,
    checkpointDir,
    onStage,
    release,
    resume,
    ...base
  } = options;
  if (candidates.length === 0) invalidOption('candidates', candidates, 'a non-empty array');
  const free = release ?? ((model: PeftModel) => model.dispose());
  // node:path loads only when checkpoints are written, so the protocol also runs in browsers.
  const join = checkpointDir !== undefined ? (await import('node:path')).join : undefined;
  /** Where run `name` checkpoints, and whether it resumes (asked for, and a checkpoint is there). */
  const stageDir = async (name: string) => {
    if (checkpointDir === undefined || !join) return {};
    const dir = join(checkpointDir, name);
    return { checkpointDir: dir, resume: resume === true && (await checkpointExists(dir)) };
  };
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
          ...(await stageDir(`select-${i}`)),
        },
      );
      trials.push({ candidate: i, best: result.best, history: result.history });
      const top1 = result.best.metric ?? Number.NEGATIVE_INFINITY;
      if (chosen === null || top1 > chosen.valTop1) {
        const epochs = selectEpochs ? result.best.epoch + 1 : result.epochsCompleted;
        chosen = { candidate: i, epochs, valTop1: top1 };
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
        ...(await stageDir('final')),
      },
    );
    return { selection: 'val', trials, selected, final, test: final.final.test as EvalMetrics, model };
  } catch (error) {
    free(model);
    throw error;
  }
}
