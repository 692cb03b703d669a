import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type LoadedVit, type VisionTransformer, loadVit } from '@peftjs/backbone';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type BackendChoice,
  type PeftModel,
  PeftError,
  backboneFingerprint,
  createPeftModel,
  initBackend,
  loadAdapter,
  saveAdapter,
} from '@peftjs/core';
import { asPrepareData, formatProblem } from '@peftjs/data';
import { readFileSet, writeFileSet } from '@peftjs/core/internal';
import { progressBar } from '@peftjs/hub';
import { evaluate } from '@peftjs/train';
import { type DataCounts, applyDataLimits } from './checks.js';
import type { ResolvedRun } from './config.js';
import { type RunSplits, buildRunData, checkRunSplits, readRunSplits } from './data-source.js';
import { applyPretrainedNormalization, checkReference } from './hub-weights.js';
import { UsageError } from './errors.js';
import { adapterFactories } from './methods.js';
import type { RunConfig } from './options.js';
import { TOP_CLASSES } from './predictions.js';
import type { Output, Progress } from './progress.js';
import { fitReference } from './fit-reference.js';
import { type RunData, fitModel, formatTop1, methodPlugins, preparing } from './protocols.js';
import { RunFolder, manifest } from './run-folder.js';
import { describeKernels, writeResults } from './run-results.js';
import { methodFileData } from './plots.js';
import { announceRun, recipeReport } from './run-notes.js';

export interface CommandContext {
  readonly out: Output;
  readonly err: Output;
  readonly progress: Progress;
  /** `--verbose`: the backend choice with every skipped backend, and tfjs's own notices. */
  readonly verbose?: boolean;
}

/** Starts the configured backend; what was chosen and skipped is printed with `--verbose` only. */
export async function backendFor(config: RunConfig, ctx: CommandContext): Promise<BackendChoice> {
  return initBackend({
    prefer: config.backend,
    log: ctx.verbose ? (line) => ctx.progress.line(line) : false,
    ...(ctx.verbose ? { debug: true } : {}),
  });
}

/**
 * Loads the run's backbone: a file, or a Hub reference (fetched into the Hugging Face cache with a progress bar on
 * stderr; its pretrained config sets the normalisation preset).
 */
export async function loadBase(config: RunConfig, ctx: CommandContext): Promise<LoadedVit> {
  if (!config.model.weights)
    throw new UsageError(
      'option "model.weights" is required (a .safetensors or .npz file, or hf:<org>/<repo> / timm:<model>)',
    );
  checkReference(config.model.weights);
  const weights = config.model.weights;
  const base = await ctx.progress.timed(
    `loading ${weights}`,
    () =>
      loadVit(weights, {
        dropPathRate: config.model.dropPathRate,
        maxNpzBytes: Math.max(1, Math.floor(config.model.maxNpzMb * 2 ** 20)),
        ...(config.model.heads !== undefined ? { heads: config.model.heads } : {}),
        ...(config.model.layerNormEps !== undefined ? { layerNormEps: config.model.layerNormEps } : {}),
        hub: { progress: progressBar(ctx.err) },
      }),
    ({ model }) =>
      `ViT depth ${model.config.depth}, width ${model.config.dim}, ${model.config.imageSize.join('×')} images, ` +
      `patch ${model.config.patchSize}`,
  );
  if (base.hub) applyPretrainedNormalization(config, base.hub, ctx.progress);
  if (config.model.fingerprint !== undefined) {
    try {
      baseFingerprint(base.model, config);
    } catch (error) {
      base.model.dispose();
      throw error;
    }
  }
  return base;
}

/**
 * The backbone's fingerprint (sha256 over every backbone weight, as adapter files record it), checked against
 * `model.fingerprint` when the config pins one: the precondition a run proves before it trains.
 */
export function baseFingerprint(vit: VisionTransformer, config: RunConfig): string {
  const fingerprint = backboneFingerprint(vit);
  const pinned = config.model.fingerprint;
  if (pinned !== undefined && fingerprint !== pinned) {
    throw new PeftError(
      'WEIGHTS_MISMATCH',
      `${config.model.weights}: backbone fingerprint ${fingerprint} is not the pinned ${pinned} ` +
        '(option "model.fingerprint"); refusing to run on other weights',
    );
  }
  return fingerprint;
}

/** The method's plugins from the resolved (already parsed) method options. */
/** How every model-building command starts: the run's notes printed, the backend up, the base weights loaded. */
export async function openRun(
  run: ResolvedRun,
  ctx: CommandContext,
): Promise<{ backend: BackendChoice; base: LoadedVit }> {
  announceRun(run, ctx.progress);
  const backend = await backendFor(run.config, ctx);
  return { backend, base: await loadBase(run.config, ctx) };
}

/** `peft train --dry-run`: the resolved config and the parameter report, nothing trained. */
function dryRun(run: ResolvedRun, vit: VisionTransformer, numClasses: number, ctx: CommandContext): void {
  const probe = createPeftModel(vit, methodPlugins(run), { seed: run.config.seed, numClasses });
  const parameters = probe.parameterReport();
  const dataPass = preparing(probe);
  probe.dispose();
  ctx.out.write(`${JSON.stringify({ config: run.config, parameters, numClasses }, null, 2)}\n`);
  if (dataPass.length > 0) {
    ctx.out.write(
      `note: ${dataPass.join(', ')} prepare on the training data first; parameters created there are not in ` +
        'this report yet\n',
    );
  }
}

/** The name of a split's source for messages: its list file, or the IDX images file. */
function splitLabel(source: RunSplits['sources'][keyof RunSplits['sources']]): string {
  return 'samples' in source ? (source.file ?? source.name) : `${source.files.images} (IDX)`;
}

const sizeOf = (source: RunSplits['sources'][keyof RunSplits['sources']]) =>
  'samples' in source ? source.samples.length : source.count;

/**
 * What the split lists say about the run, before any image is decoded: the method's data-bound options capped or
 * refused (`applyDataLimits`), and with `train.dropLast` how many images each epoch skips.
 */
function fitToData(run: ResolvedRun, splits: RunSplits, progress: Progress): ResolvedRun {
  const trained = [splits.sources.select, splits.sources.trainval];
  const smallest = trained.reduce((a, b) => (sizeOf(b) < sizeOf(a) ? b : a));
  const counts: DataCounts = {
    trainImages: sizeOf(smallest),
    trainSplit: `${splitLabel(smallest)}: ${sizeOf(smallest)} images`,
    numClasses: splits.numClasses,
  };
  const fitted = applyDataLimits(run, counts);
  const { batchSize, dropLast } = fitted.run.config.train;
  const notes = [...fitted.notes];
  if (dropLast && !run.method.fit) {
    const skips = trained.map((s) => `${sizeOf(s) % batchSize} of ${sizeOf(s)} (${splitLabel(s)})`);
    notes.push(
      `train.dropLast: each epoch skips the last partial batch of ${batchSize}: ${skips.join(', then ')} images; ` +
        '--train.dropLast=false trains on all of them',
    );
  }
  for (const note of notes) progress.line(`note: ${note}`);
  return fitted.run;
}

/** `peft train`: check data → build model → prepare (data pass) → train and select → test once → files. */
export async function trainCommand(
  resolved: ResolvedRun,
  ctx: CommandContext,
  options: { dryRun: boolean },
): Promise<void> {
  const started = performance.now();
  const { backend, base } = await openRun(resolved, ctx);
  const vit = base.model;
  const splits = await readRunSplits(resolved.config, vit.config);
  const run = fitToData(resolved, splits, ctx.progress);
  const { config } = run;
  if (options.dryRun) {
    dryRun(run, vit, splits.numClasses, ctx);
    return;
  }
  const problems = await checkRunSplits(config, vit.config, splits, ctx.progress);
  if (problems.length > 0) {
    throw new Error(
      `data check failed with ${problems.length} problem(s); nothing was trained:\n` +
        problems
          .slice(0, 20)
          .map((p) => `  ${formatProblem(p)}`)
          .join('\n'),
    );
  }
  const data = { ...buildRunData(config, vit.config, splits), backbone: vit };
  const folder = new RunFolder(config.out);
  await folder.create('peft train');
  try {
    if (!config.train.resume && existsSync(folder.path('manifest.json'))) {
      throw new UsageError(
        `${folder.dir} already holds a run: pass --train.resume=true to continue it, or choose another --out`,
      );
    }
    await trainInFolder(run, ctx, { backend, base, data, splits, folder, started });
  } finally {
    await folder.close();
  }
}

/** `peft train` once its data is checked and its folder locked: fit, test once, write the run's files. */
async function trainInFolder(
  run: ResolvedRun,
  ctx: CommandContext,
  state: {
    backend: BackendChoice;
    base: LoadedVit;
    data: RunData;
    splits: RunSplits;
    folder: RunFolder;
    started: number;
  },
): Promise<void> {
  const { config, method } = run;
  const { backend, base, data, splits, folder, started } = state;
  const vit = base.model;
  const progress = ctx.progress;
  const selection = config.train.protocol === 'vtab' ? 'val' : config.train.selection;
  const recipe = recipeReport(run);
  // The protocols whose final model trains on the validation split too (vtab's and refit's final fit, single).
  const trainedOn = ['vtab', 'single', 'refit'].includes(config.train.protocol)
    ? [splits.sources.select, splits.sources.val].map((s) => ('samples' in s ? s.name : splitLabel(s)))
    : undefined;
  await folder.writeJson('manifest.json', {
    ...manifest({
      config,
      method: { name: method.name, version: method.version },
      warnings: run.warnings,
      backend,
      data: {
        ...data.description,
        normalization: config.data.normalization,
        ...(splits.classNames ? { classNames: splits.classNames } : {}),
      },
      selection,
      weights: { path: base.hub?.pinned ?? config.model.weights ?? '', layout: base.layout },
    }),
    ...(recipe ? { recipe } : {}),
    ...(trainedOn ? { trainedOn } : {}),
  });
  // The precondition every number rests on: the base is the one loaded (and the pinned one, when pinned).
  const fingerprint = baseFingerprint(vit, config);
  const fitted = await (run.method.fit
    ? fitReference(run, data, progress)
    : fitModel(run, data, folder, progress));
  const { model, result } = fitted;
  try {
    // The selection protocol never reads the test split.
    const test =
      config.train.protocol === 'select'
        ? null
        : await progress.timed(
            `testing on ${splitLabel(splits.sources.test)} (${data.test.size} images)`,
            (phase) =>
              evaluate(model, data.test, {
                batchSize: config.train.evalBatchSize ?? config.train.batchSize,
                topK: TOP_CLASSES,
                onBatch: (done, total) => phase.tick(done, total),
              }),
            (metrics) => `top-1 ${(metrics.top1 * 100).toFixed(2)} %`,
          );
    await saveAdapter(model, folder.path('adapter'));
    const written = await writeResults(run, folder, fitted, test, {
      backend: backend.backend,
      kernels: describeKernels(backend),
      fingerprint,
      wallSeconds: (performance.now() - started) / 1000,
      testSource: splits.sources.test,
      ...(splits.classNames ? { classNames: splits.classNames } : {}),
    });
    const scored = test
      ? `test top-1 ${(test.top1 * 100).toFixed(2)} % (${test.count} images, selection: ${result.selection})`
      : `val200 top-1 ${formatTop1(fitted.validation?.top1 ?? null)} at epoch ${fitted.validation?.bestEpoch} (the test split was not read)`;
    ctx.out.write(
      `${scored}\n` +
        `trainable parameters ${written.trainable.toLocaleString('en-US')} ` +
        `(${written.trainableWithoutHead.toLocaleString('en-US')} without head)\n` +
        `run folder ${folder.dir}\n`,
    );
  } finally {
    model.dispose();
  }
}

/** The run's base weights with the adapter in `adapterDir` loaded on them. */
export async function modelFromAdapter(
  run: ResolvedRun,
  adapterDir: string,
  ctx: CommandContext,
): Promise<PeftModel> {
  const base = await loadBase(run.config, ctx);
  return loadAdapter(base.model, adapterDir, { factories: adapterFactories(run.method) });
}

/**
 * `peft prepare` (also `peft hierarchy` and `peft prototypes`): the method's data pass alone — the model `peft
 * train` fits last (same seed, the train+val split, the same batches) is built and prepared, and the method's
 * outputs describe it (for SHIP: the hierarchy, its heatmap and the prototype bank); `artifacts.json` holds every
 * plugin's recorded artifacts.
 */
export async function prepareCommand(resolved: ResolvedRun, ctx: CommandContext): Promise<void> {
  const names = methodPlugins(resolved)
    .filter((p) => p.prepare)
    .map((p) => p.name);
  if (names.length === 0)
    throw new UsageError(`method "${resolved.method.name}" has no data pass: nothing to prepare`);
  const { base } = await openRun(resolved, ctx);
  const splits = await readRunSplits(resolved.config, base.model.config);
  const run = fitToData(resolved, splits, ctx.progress);
  const { config, method } = run;
  const data = buildRunData(config, base.model.config, splits);
  const model = createPeftModel(base.model, methodPlugins(run), {
    seed: config.seed,
    numClasses: data.numClasses,
  });
  try {
    await ctx.progress.timed(`preparing ${names.join(', ')} on ${data.trainval.size} images`, () =>
      model.prepare(asPrepareData(data.trainval, config.train.batchSize)),
    );
    const files = method.prepare ? await method.prepare.outputs(model, config.method.options) : [];
    const folder = new RunFolder(config.out);
    await folder.create('peft prepare');
    try {
      await folder.writeJson('artifacts.json', model.artifacts());
      for (const file of files) await folder.writeFile(file.name, await methodFileData(file.data));
    } finally {
      await folder.close();
    }
    ctx.out.write(
      [
        ...files.map((f) => `${folder.path(f.name)}: ${f.description}`),
        `${folder.path('artifacts.json')}`,
      ].join('\n') + '\n',
    );
  } finally {
    model.dispose();
  }
}

/** `peft export`: check that a run's adapter loads on its base, then copy it to a folder of its own. */
export async function exportCommand(
  run: ResolvedRun,
  ctx: CommandContext,
  options: { run: string; to: string },
): Promise<void> {
  await backendFor(run.config, ctx);
  const adapterDir = join(options.run, 'adapter');
  const target = await stat(options.to).catch(() => null);
  if (target && !target.isDirectory()) {
    throw new UsageError(
      `--to ${options.to} exists and is not a folder; name a folder to export the adapter into`,
    );
  }
  const model = await modelFromAdapter(run, adapterDir, ctx);
  model.dispose();
  // The generation just verified, written as one: a crash leaves the previous export or this one.
  const names = [ADAPTER_WEIGHTS_FILE, ADAPTER_CONFIG_FILE];
  const files = await readFileSet(adapterDir, names);
  await writeFileSet(
    options.to,
    names.map((name) => ({ name, data: files.get(name) as Uint8Array })),
  );
  ctx.out.write(`exported ${adapterDir} → ${options.to} (verified: loads on ${run.config.model.weights})\n`);
}
