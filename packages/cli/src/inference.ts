import { resolve } from 'node:path';
import { type PeftModel, tf } from '@peftjs/core';
import { decodeImage, normalize } from '@peftjs/data';
import { evaluate } from '@peftjs/train';
import { type CommandContext, backendFor, modelFromAdapter } from './commands.js';
import type { ResolvedRun } from './config.js';
import { buildRunData, inputLimits, readRunSplits } from './data-source.js';
import { UsageError } from './errors.js';
import { TOP_CLASSES, knownLabels, rankedClasses } from './predictions.js';
import type { RunManifest } from './run-dir.js';

/** `peft eval` and `peft predict`: a saved adapter on its base, on a split or on image files. */

/** Splits a final model trains on include val (the VTAB-1k refit trains on train800val200). */
const includesVal = (splits: readonly string[]) => splits.some((s) => /val/.test(s));

/** `peft eval`: a saved adapter on a split (default test); JSON with the metrics on stdout. */
export async function evalCommand(
  run: ResolvedRun,
  ctx: CommandContext,
  options: { adapter: string; split: 'test' | 'val' | 'trainval'; manifest?: RunManifest },
): Promise<void> {
  const { config } = run;
  await backendFor(config, ctx);
  const trainedOn = options.manifest?.trainedOn;
  if (options.split !== 'test' && trainedOn && includesVal(trainedOn)) {
    ctx.progress.line(
      `note: this adapter is the run's final fit, trained on ${trainedOn.join(' and ')}: its ${options.split} ` +
        'accuracy is measured on images it trained on, not a held-out score (the test split is the held-out one)',
    );
  }
  const model = await modelFromAdapter(run, options.adapter, ctx);
  try {
    const splits = await readRunSplits(config, model.config);
    const data = buildRunData(config, model.config, splits);
    const dataset =
      options.split === 'val' ? data.val : options.split === 'trainval' ? data.trainval : data.test;
    const metrics = await ctx.progress.timed(
      `evaluating ${options.split} (${dataset.size} images)`,
      (phase) =>
        evaluate(model, dataset, {
          batchSize: config.train.evalBatchSize ?? config.train.batchSize,
          onBatch: (done, total) => phase.tick(done, total),
        }),
      (m) => `top-1 ${(m.top1 * 100).toFixed(2)} %`,
    );
    const { top1, top5, count, predictions } = metrics;
    ctx.out.write(`${JSON.stringify({ split: options.split, top1, top5, count, predictions })}\n`);
  } finally {
    model.dispose();
  }
}

/** True labels of listed images: every split list of the run's data, when it can be read (else none). */
async function labelsOfListedImages(run: ResolvedRun, model: PeftModel): Promise<Map<string, number>> {
  if (!run.config.data.root) return new Map();
  try {
    return knownLabels((await readRunSplits(run.config, model.config)).lists);
  } catch {
    // The data may be gone or elsewhere on this machine: predictions then carry no true label.
    return new Map();
  }
}

/**
 * `peft predict`: one JSON line per image on stdout — the file, the most probable classes with their
 * probabilities, and, for an image one of the run's split lists names, its true label.
 */
export async function predictCommand(
  run: ResolvedRun,
  ctx: CommandContext,
  options: { adapter: string; images: string[]; topK?: number; manifest?: RunManifest },
): Promise<void> {
  if (options.images.length === 0) throw new UsageError('peft predict needs at least one image path');
  const { config } = run;
  await backendFor(config, ctx);
  const model = await modelFromAdapter(run, options.adapter, ctx);
  try {
    const [h, w] = model.config.imageSize;
    const channels = model.config.channels as 1 | 3;
    const names = options.manifest?.classNames;
    const truth = await labelsOfListedImages(run, model);
    const keep = Math.min(options.topK ?? TOP_CLASSES, model.config.numClasses);
    for (const path of options.images) {
      const pixels = normalize(
        await decodeImage(path, { size: [h, w], channels, limits: inputLimits(config) }),
        config.data.normalization,
        channels,
      );
      const best = tf.tidy(() =>
        tf.topk(tf.softmax(model.predict(tf.tensor4d(pixels, [1, h, w, channels]))), keep),
      );
      const ranked = {
        classes: Array.from(best.indices.dataSync()),
        probabilities: Array.from(best.values.dataSync()),
      };
      tf.dispose([best.indices, best.values]);
      const top = rankedClasses(ranked, names);
      const label = truth.get(resolve(path));
      const predicted = top[0] as (typeof top)[number];
      ctx.out.write(
        `${JSON.stringify({
          image: path,
          predicted: predicted.class,
          ...(predicted.name !== undefined ? { predictedName: predicted.name } : {}),
          probability: predicted.probability,
          top,
          ...(label !== undefined
            ? {
                label,
                ...(names?.[label] !== undefined ? { labelName: names[label] } : {}),
                correct: label === predicted.class,
              }
            : {}),
        })}\n`,
      );
    }
  } finally {
    model.dispose();
  }
}
