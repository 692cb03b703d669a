import { type FitOutcome, createPeftModel } from '@peftjs/core';
import { asPrepareData } from '@peftjs/data';
import type { TrainResult } from '@peftjs/train';
import type { Fitted, RunData } from './protocols.js';
import type { ResolvedRun } from './config.js';
import type { Progress } from './progress.js';

const bestOf = (outcome: FitOutcome) => Math.max(...outcome.candidates.map((c) => c.valTop1));

/**
 * A method that fits without gradient steps (`fit`, e.g. the kNN reference) in place of `train()`: a fresh model,
 * its setting chosen on the validation split after fitting the selection split, then fitted on train+val. The
 * result says so — selection on val, no epochs, no optimizer steps — and carries the method's decision.
 */
export async function fitReference(run: ResolvedRun, data: RunData, progress: Progress): Promise<Fitted> {
  const fit = run.method.fit;
  if (!fit) throw new Error(`method "${run.method.name}" has no fit capability`);
  const { config } = run;
  const model = createPeftModel(data.backbone, [run.method.create(config.method.options)].flat(), {
    seed: config.seed,
    numClasses: data.numClasses,
  });
  try {
    const batch = config.train.evalBatchSize ?? config.train.batchSize;
    const outcome = await progress.timed(
      `fitting ${run.method.name} on ${data.select.size} images, choosing on ${data.val.size}, then on ${data.trainval.size}`,
      () =>
        fit.fit(
          model,
          {
            select: asPrepareData(data.select, batch),
            val: asPrepareData(data.val, batch),
            trainval: asPrepareData(data.trainval, batch),
          },
          config.method.options,
        ),
      (o) => `chose ${JSON.stringify(o.chosen)} (val top-1 ${(bestOf(o) * 100).toFixed(2)} %)`,
    );
    const best = bestOf(outcome);
    const result: TrainResult = {
      selection: 'val',
      best: { epoch: 0, metric: best, split: 'val' },
      history: [],
      final: {},
      epochsCompleted: 0,
      globalStep: 0,
    };
    return { model, result, histories: [], fit: outcome };
  } catch (error) {
    model.dispose();
    throw error;
  }
}
