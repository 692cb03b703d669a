import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type LoadedVit,
  type VisionTransformer,
  detectLayout,
  inferVitConfig,
  loadVit,
  readNpz,
  toTimmStateDict,
} from '@peftjs/backbone';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type BackendChoice,
  type PeftModel,
  type PeftPlugin,
  type Tensor4D,
  createPeftModel,
  initBackend,
  loadAdapter,
  saveAdapter,
  tf,
} from '@peftjs/core';
import { type HostTensor, parseSafetensors } from '@peftjs/core/safetensors';
import { type ImageDataset, asPrepareData, decodeImage, formatProblem, normalize } from '@peftjs/data';
import {
  type TrainOptions,
  type TrainResult,
  type VtabOptions,
  evaluate,
  train,
  vtabProtocol,
} from '@peftjs/train';
import type { ResolvedRun } from './config.js';
import { buildRunData, checkRunSplits, readRunSplits } from './data-source.js';
import { UsageError } from './errors.js';
import { adapterFactories } from './methods.js';
import type { RunConfig } from './options.js';
import type { Output, Progress } from './progress.js';
import { RunFolder, manifest, writeReport } from './run-folder.js';

export interface CommandContext {
  readonly out: Output;
  readonly err: Output;
  readonly progress: Progress;
}

async function backendFor(config: RunConfig, ctx: CommandContext): Promise<BackendChoice> {
  return initBackend({ prefer: config.backend, log: (line) => ctx.progress.line(line) });
}

async function loadBase(config: RunConfig): Promise<LoadedVit> {
  if (!config.model.weights)
    throw new UsageError('option "model.weights" is required (a .safetensors or .npz file)');
  return loadVit(config.model.weights, {
    dropPathRate: config.model.dropPathRate,
    ...(config.model.heads !== undefined ? { heads: config.model.heads } : {}),
    ...(config.model.layerNormEps !== undefined ? { layerNormEps: config.model.layerNormEps } : {}),
  });
}

/** The method's plugins from the resolved (already parsed) method options. */
function methodPlugins(run: ResolvedRun): PeftPlugin[] {
  return [run.method.create(run.config.method.options)].flat();
}

/** The plugins of `model` that run a data pass before training. */
const preparing = (model: PeftModel) => model.plugins.filter((p) => p.prepare).map((p) => p.name);

/** `train()` options from the config; the vtab protocol sets selection, resume, stops and restores itself. */
function trainOptions(run: ResolvedRun, onEvent: TrainOptions['onEvent']): VtabOptions & TrainOptions {
  const { protocol, ...options } = run.config.train;
  return { ...options, seed: run.config.seed, ...(onEvent ? { onEvent } : {}) };
}

function vtabOptions(options: TrainOptions): VtabOptions {
  const { selection: _s, resume: _r, stopAfterEpochs: _a, restoreBest: _b, ...rest } = options;
  return rest;
}

function printWarnings(run: ResolvedRun, ctx: CommandContext): void {
  for (const warning of run.warnings) ctx.progress.line(`note: ${warning}`);
}

/** `peft train`: check data → build model → prepare (data pass) → train and select → test once → files. */
export async function trainCommand(
  run: ResolvedRun,
  ctx: CommandContext,
  options: { dryRun: boolean },
): Promise<void> {
  const { config, method } = run;
  const started = performance.now();
  printWarnings(run, ctx);
  const backend = await backendFor(config, ctx);
  const base = await loadBase(config);
  const vit = base.model;
  const splits = await readRunSplits(config, vit.config);
  const probe = createPeftModel(vit, methodPlugins(run), {
    seed: config.seed,
    numClasses: splits.numClasses,
  });
  const report = probe.parameterReport();
  const dataPass = preparing(probe);
  probe.dispose();
  if (options.dryRun) {
    ctx.out.write(
      `${JSON.stringify({ config, parameters: report, numClasses: splits.numClasses }, null, 2)}\n`,
    );
    if (dataPass.length > 0) {
      ctx.out.write(
        `note: ${dataPass.join(', ')} prepare on the training data first; parameters created there are not in ` +
          'this report yet\n',
      );
    }
    return;
  }
  const problems = await checkRunSplits(config, vit.config, splits);
  if (problems.length > 0) {
    throw new Error(
      `data check failed with ${problems.length} problem(s); nothing was trained:\n` +
        problems
          .slice(0, 20)
          .map((p) => `  ${formatProblem(p)}`)
          .join('\n'),
    );
  }
  const data = buildRunData(config, vit.config, splits);
  const folder = new RunFolder(config.out);
  await folder.create();
  const progress = ctx.progress;
  const selection = config.train.protocol === 'vtab' ? 'val' : config.train.selection;
  await folder.writeJson(
    'manifest.json',
    manifest({
      config,
      method: { name: method.name, version: method.version },
      warnings: run.warnings,
      backend,
      data: { ...data.description, normalization: config.data.normalization },
      selection,
      weights: { path: config.model.weights ?? '', layout: base.layout },
    }),
  );
  const onEvent: TrainOptions['onEvent'] = (event) => {
    progress.trainEvent(event, config.train.epochs);
    void folder.log({ ...event });
  };
  let prepareOn: ImageDataset = data.select;
  const makeModel = async (): Promise<PeftModel> => {
    const model = createPeftModel(vit, methodPlugins(run), {
      seed: config.seed,
      numClasses: data.numClasses,
    });
    if (preparing(model).length > 0) {
      progress.line(`preparing ${preparing(model).join(', ')} on ${prepareOn.size} images`);
      await model.prepare(asPrepareData(prepareOn, config.train.batchSize));
    }
    return model;
  };
  let model: PeftModel;
  let result: TrainResult;
  const histories: { label: string; history: TrainResult['history'] }[] = [];
  const base_ = trainOptions(run, onEvent);
  if (config.train.protocol === 'vtab') {
    const outcome = await vtabProtocol(
      makeModel,
      { train800: data.select, val200: data.val, train800val200: data.trainval, test: data.test },
      {
        ...vtabOptions(base_),
        checkpointDir: folder.path('checkpoints'),
        onStage: (stage) => {
          prepareOn = stage.phase === 'final' ? data.trainval : data.select;
          progress.line(
            stage.phase === 'final'
              ? 'final fit on train+val'
              : 'selection run: train on train split, score on val',
          );
        },
      },
    );
    for (const trial of outcome.trials)
      histories.push({ label: `select ${trial.candidate}`, history: trial.history });
    histories.push({ label: 'final', history: outcome.final.history });
    model = outcome.model;
    result = outcome.final;
  } else {
    prepareOn = data.trainval;
    model = await makeModel();
    result = await train(
      model,
      { train: data.trainval, val: data.val, test: data.test },
      { ...base_, checkpointDir: folder.path('checkpoints') },
    );
    histories.push({ label: 'train', history: result.history });
  }
  const test = await evaluate(model, data.test, { batchSize: config.train.batchSize });
  await saveAdapter(model, folder.path('adapter'));
  await folder.writeFile(
    'predictions.jsonl',
    `${test.predictions.map((p, i) => JSON.stringify({ index: i, predicted: p })).join('\n')}\n`,
  );
  const parameters = model.parameterReport();
  const methodReport = method.report ? await method.report(model, config.method.options) : undefined;
  const wallSeconds = (performance.now() - started) / 1000;
  const summary = {
    method: config.method.name,
    ...(methodReport ? { methodReport: methodReport.fields } : {}),
    selection: result.selection,
    ...(result.selectionWarning ? { selectionWarning: result.selectionWarning } : {}),
    test: {
      top1: test.top1,
      top5: test.top5,
      count: test.count,
      perClass: test.perClass,
      confusion: test.confusion,
    },
    parameters: {
      total: parameters.total,
      trainable: parameters.trainable,
      trainableWithoutHead: parameters.trainableWithoutHead,
    },
    wallSeconds,
  };
  await folder.writeJson('results.json', summary);
  await writeReport(folder, {
    title: `${config.method.name} on ${config.data.task ?? config.data.root}`,
    method: config.method.name,
    parameters: summary.parameters,
    histories,
    result,
    test,
    ...(methodReport ? { methodReport } : {}),
    wallSeconds,
    backend: backend.backend,
  });
  model.dispose();
  ctx.out.write(
    `test top-1 ${(test.top1 * 100).toFixed(2)} % (${test.count} images, selection: ${result.selection})\n` +
      `trainable parameters ${parameters.trainable.toLocaleString('en-US')} ` +
      `(${parameters.trainableWithoutHead.toLocaleString('en-US')} without head)\n` +
      `run folder ${folder.dir}\n`,
  );
}

async function modelFromAdapter(run: ResolvedRun, adapterDir: string): Promise<PeftModel> {
  const base = await loadBase(run.config);
  return loadAdapter(base.model, adapterDir, { factories: adapterFactories(run.method) });
}

/** `peft eval`: a saved adapter on a split (default test). */
export async function evalCommand(
  run: ResolvedRun,
  ctx: CommandContext,
  options: { adapter: string; split: 'test' | 'val' | 'trainval' },
): Promise<void> {
  const { config } = run;
  await backendFor(config, ctx);
  const model = await modelFromAdapter(run, options.adapter);
  const splits = await readRunSplits(config, model.config);
  const data = buildRunData(config, model.config, splits);
  const dataset =
    options.split === 'val' ? data.val : options.split === 'trainval' ? data.trainval : data.test;
  const metrics = await evaluate(model, dataset, { batchSize: config.train.batchSize });
  model.dispose();
  ctx.out.write(
    `${JSON.stringify({ split: options.split, top1: metrics.top1, top5: metrics.top5, count: metrics.count, predictions: metrics.predictions })}\n`,
  );
}

/** `peft predict`: labels for image files. */
export async function predictCommand(
  run: ResolvedRun,
  ctx: CommandContext,
  options: { adapter: string; images: string[] },
): Promise<void> {
  if (options.images.length === 0) throw new UsageError('peft predict needs at least one image path');
  const { config } = run;
  await backendFor(config, ctx);
  const model = await modelFromAdapter(run, options.adapter);
  const [h, w] = model.config.imageSize;
  const channels = model.config.channels as 1 | 3;
  for (const path of options.images) {
    const pixels = normalize(
      await decodeImage(path, { size: [h, w], channels }),
      config.data.normalization,
      channels,
    );
    const probs = tf.tidy(() => tf.softmax(model.predict(tf.tensor4d(pixels, [1, h, w, channels]))));
    const values = Array.from(probs.dataSync());
    probs.dispose();
    const label = values.indexOf(Math.max(...values));
    ctx.out.write(`${JSON.stringify({ image: path, label, probability: values[label] })}\n`);
  }
  model.dispose();
}

/**
 * `peft prepare` (also `peft hierarchy` and `peft prototypes`): the method's data pass alone — the model `peft
 * train` fits last (same seed, the train+val split, the same batches) is built and prepared, and the method's
 * outputs describe it (for SHIP: the hierarchy, its heatmap and the prototype bank); `artifacts.json` holds every
 * plugin's recorded artifacts.
 */
export async function prepareCommand(run: ResolvedRun, ctx: CommandContext): Promise<void> {
  const { config, method } = run;
  printWarnings(run, ctx);
  await backendFor(config, ctx);
  const base = await loadBase(config);
  const splits = await readRunSplits(config, base.model.config);
  const data = buildRunData(config, base.model.config, splits);
  const model = createPeftModel(base.model, methodPlugins(run), {
    seed: config.seed,
    numClasses: data.numClasses,
  });
  try {
    const names = preparing(model);
    if (names.length === 0)
      throw new UsageError(`method "${method.name}" has no data pass: nothing to prepare`);
    ctx.progress.line(`preparing ${names.join(', ')} on ${data.trainval.size} images`);
    await model.prepare(asPrepareData(data.trainval, config.train.batchSize));
    const files = method.prepare ? await method.prepare.outputs(model, config.method.options) : [];
    const folder = new RunFolder(config.out);
    await folder.create();
    await folder.writeJson('artifacts.json', model.artifacts());
    for (const file of files) await folder.writeFile(file.name, file.data);
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
  const model = await modelFromAdapter(run, adapterDir);
  model.dispose();
  await mkdir(options.to, { recursive: true });
  for (const file of [ADAPTER_WEIGHTS_FILE, ADAPTER_CONFIG_FILE])
    await copyFile(join(adapterDir, file), join(options.to, file));
  ctx.out.write(`exported ${adapterDir} → ${options.to} (verified: loads on ${run.config.model.weights})\n`);
}

/** `peft inspect`: tensors, detected layout and architecture, parameter count of a weights file. */
export async function inspectCommand(
  ctx: CommandContext,
  file: string,
  options: { heads?: number },
): Promise<void> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as Error).message}`);
  }
  const tensors = new Map<string, HostTensor>();
  const rows: string[] = [];
  const isZip = bytes[0] === 0x50 && bytes[1] === 0x4b;
  let heads = options.heads;
  if (isZip) {
    for (const [name, t] of readNpz(bytes, file)) {
      tensors.set(name, t);
      rows.push(`${name}\tF32\t[${t.shape.join(', ')}]`);
    }
  } else {
    const st = parseSafetensors(bytes, { source: file });
    if (st.metadata.config && heads === undefined) {
      try {
        const meta = JSON.parse(st.metadata.config) as Record<string, unknown>;
        const fromMeta = meta.num_heads ?? meta.heads ?? meta.num_attention_heads;
        if (typeof fromMeta === 'number') heads = fromMeta;
      } catch {
        // Metadata from other tools may hold anything; without a head count the architecture line says so.
      }
    }
    for (const name of st.names()) {
      const entry = st.entry(name);
      rows.push(`${name}\t${entry.dtype}\t[${entry.shape.join(', ')}]`);
      tensors.set(name, { shape: [...entry.shape], data: new Float32Array(0) });
    }
  }
  const total = [...tensors.values()].reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  ctx.out.write(`${rows.join('\n')}\n`);
  ctx.out.write(`${tensors.size} tensors, ${total.toLocaleString('en-US')} parameters\n`);
  try {
    const layout = detectLayout(tensors.keys());
    ctx.out.write(`layout: ${layout}\n`);
    if (!isZip && layout === 'timm') {
      const config = inferVitConfig(tensors, { source: file, ...(heads !== undefined ? { heads } : {}) });
      ctx.out.write(`architecture: ${JSON.stringify(config)}\n`);
    } else if (isZip) {
      const converted = toTimmStateDict(tensors, { source: file });
      const config = inferVitConfig(converted.tensors, { source: file });
      ctx.out.write(`architecture: ${JSON.stringify(config)}\n`);
    }
  } catch (error) {
    ctx.out.write(`architecture: not a recognised ViT (${(error as Error).message.split('\n')[0]})\n`);
  }
}

/** `peft bench`: forward images/s and training step time of the configured model on the active backend. */
export async function benchCommand(
  run: ResolvedRun,
  ctx: CommandContext,
  options: { iters: number },
): Promise<void> {
  const { config, method } = run;
  const backend = await backendFor(config, ctx);
  const base = await loadBase(config);
  const vit: VisionTransformer = base.model;
  const model = createPeftModel(vit, methodPlugins(run), { seed: config.seed, numClasses: 10 });
  const batch = config.train.microBatch ?? config.train.batchSize;
  const [h, w] = vit.config.imageSize;
  const images = tf.randomNormal([batch, h, w, vit.config.channels], 0, 1, 'float32', 1) as Tensor4D;
  const labels = tf.tensor1d(
    Array.from({ length: batch }, (_, i) => i % 10),
    'int32',
  );
  if (preparing(model).length > 0) {
    // Speed does not depend on the data: the method's stand-in artifacts, else a data pass over the bench batch.
    const placeholder = method.prepare?.placeholder?.(vit.config, config.method.options);
    if (placeholder) model.restoreArtifacts(placeholder);
    else
      await model.prepare({
        size: batch,
        batches: async function* () {
          yield { images };
        },
      });
  }
  const time = async (fn: () => Promise<void>) => {
    await fn();
    const start = performance.now();
    for (let i = 0; i < options.iters; i++) await fn();
    return (performance.now() - start) / options.iters;
  };
  const forwardMs = await time(async () => {
    const logits = model.predict(images);
    await logits.data();
    logits.dispose();
  });
  let stepMs = Number.NaN;
  if (model.registry.trainableEntries().length > 0) {
    stepMs = await time(async () => {
      const { loss, grads } = model.lossAndGradients(images, labels);
      await loss.data();
      tf.dispose([loss, ...Object.values(grads)]);
    });
  }
  model.dispose();
  tf.dispose([images, labels]);
  ctx.out.write(
    `${JSON.stringify({
      backend: backend.backend,
      batch,
      forwardImagesPerSecond: (batch * 1000) / forwardMs,
      forwardMs,
      trainStepMs: Number.isNaN(stepMs) ? null : stepMs,
    })}\n`,
  );
}

/** `peft data check`: every problem of every split, without training. */
export async function dataCheckCommand(config: RunConfig, ctx: CommandContext): Promise<boolean> {
  const base = config.model.weights ? await loadBase(config) : null;
  const modelConfig = base?.model.config;
  if (!modelConfig)
    throw new UsageError('option "model.weights" is required: images are checked at the model input size');
  const splits = await readRunSplits(config, modelConfig);
  const problems = await checkRunSplits(config, modelConfig, splits);
  if (problems.length === 0) {
    ctx.out.write(
      `data ok: ${splits.lists.map((s) => `${s.name} ${s.samples.length}`).join(', ') || 'IDX files'}\n`,
    );
    return true;
  }
  ctx.out.write(`${problems.map((p) => formatProblem(p)).join('\n')}\n${problems.length} problem(s)\n`);
  return false;
}
