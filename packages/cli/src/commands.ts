import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type LoadedVit,
  type VisionTransformer,
  detectLayout,
  inferVitConfig,
  loadVit,
  pretrainedHints,
  readNpz,
  toTimmStateDict,
} from '@peftjs/backbone';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type BackendChoice,
  type HostTensor,
  type PeftModel,
  Rng,
  type Tensor4D,
  createPeftModel,
  initBackend,
  loadAdapter,
  parseSafetensors,
  saveAdapter,
  serializeSafetensors,
  tf,
} from '@peftjs/core';
import { type ImageDataset, asPrepareData, decodeImage, formatProblem, normalize } from '@peftjs/data';
import { affinityHeatmapPng, analyseLayers, kmeans, layerFeatures } from '@peftjs/hierarchy';
import { progressBar } from '@peftjs/hub';
import { type TrainOptions, type TrainResult, evaluate, train, vtabProtocol } from '@peftjs/train';
import { UsageError } from './config.js';
import { buildRunData, checkRunSplits, inputLimits, readRunSplits } from './data-source.js';
import { applyPretrainedNormalization, checkReference, resolveWeightsArgument } from './hub-weights.js';
import { ALL_PLUGIN_FACTORIES, methodPlugins } from './methods.js';
import type { RunConfig } from './options.js';
import type { Progress, Output } from './progress.js';
import { RunFolder, manifest, writeReport } from './run-folder.js';

export interface CommandContext {
  readonly out: Output;
  readonly err: Output;
  readonly progress: Progress;
}

async function backendFor(config: RunConfig, ctx: CommandContext): Promise<BackendChoice> {
  const choice = await initBackend({ prefer: config.backend, log: (line) => ctx.progress.line(line) });
  return choice;
}

async function loadBase(config: RunConfig, ctx: CommandContext): Promise<LoadedVit> {
  if (!config.model.weights)
    throw new UsageError(
      'option "model.weights" is required (a .safetensors or .npz file, or hf:<org>/<repo> / timm:<model>)',
    );
  checkReference(config.model.weights);
  const base = await loadVit(config.model.weights, {
    dropPathRate: config.model.dropPathRate,
    maxNpzBytes: Math.max(1, Math.floor(config.model.maxNpzMb * 2 ** 20)),
    ...(config.model.heads !== undefined ? { heads: config.model.heads } : {}),
    ...(config.model.layerNormEps !== undefined ? { layerNormEps: config.model.layerNormEps } : {}),
    hub: { progress: progressBar(ctx.err) },
  });
  if (base.hub) applyPretrainedNormalization(config, base.hub, ctx.progress);
  return base;
}

function trainOptions(config: RunConfig, onEvent: TrainOptions['onEvent']): TrainOptions {
  const t = config.train;
  return {
    epochs: t.epochs,
    batchSize: t.batchSize,
    ...(t.microBatch !== undefined ? { microBatch: t.microBatch } : {}),
    optimizer: t.optimizer,
    lr: t.lr,
    weightDecay: t.weightDecay,
    momentum: t.momentum,
    schedule: t.schedule,
    warmupEpochs: t.warmupEpochs,
    warmupLrInit: t.warmupLrInit,
    lrMin: t.lrMin,
    seed: config.seed,
    evalEvery: t.evalEvery,
    checkpointEvery: t.checkpointEvery,
    selection: t.selection,
    ...(onEvent ? { onEvent } : {}),
  };
}

/** `peft train`: check data → build model → prepare (SHIP hierarchy) → train and select → test once → files. */
export async function trainCommand(
  config: RunConfig,
  ctx: CommandContext,
  options: { dryRun: boolean },
): Promise<void> {
  const started = performance.now();
  const backend = await backendFor(config, ctx);
  const base = await loadBase(config, ctx);
  const vit = base.model;
  const splits = await readRunSplits(config, vit.config);
  const probe = createPeftModel(vit, methodPlugins(config.method.name, config.method.options), {
    seed: config.seed,
    numClasses: splits.numClasses,
  });
  const report = probe.parameterReport();
  probe.dispose();
  if (options.dryRun) {
    ctx.out.write(
      `${JSON.stringify({ config, parameters: report, numClasses: splits.numClasses }, null, 2)}\n`,
    );
    if (config.method.name === 'ship') {
      ctx.out.write(
        'note: SHIP creates its prompts after the hierarchy pass, so they are not in this report yet\n',
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
      backend,
      data: { ...data.description, normalization: config.data.normalization },
      selection,
      weights: { path: base.hub?.pinned ?? config.model.weights ?? '', layout: base.layout },
    }),
  );
  const onEvent: TrainOptions['onEvent'] = (event) => {
    progress.trainEvent(event, config.train.epochs);
    void folder.log({ ...event });
  };
  let prepareOn: ImageDataset = data.select;
  const makeModel = async (): Promise<PeftModel> => {
    const model = createPeftModel(vit, methodPlugins(config.method.name, config.method.options), {
      seed: config.seed,
      numClasses: data.numClasses,
    });
    if (model.plugins.some((p) => p.prepare)) {
      progress.line(
        `preparing ${model.plugins
          .filter((p) => p.prepare)
          .map((p) => p.name)
          .join(', ')} on ${prepareOn.size} images`,
      );
      await model.prepare(asPrepareData(prepareOn, config.train.batchSize));
    }
    return model;
  };
  let model: PeftModel;
  let result: TrainResult;
  const histories: { label: string; history: TrainResult['history'] }[] = [];
  if (config.train.protocol === 'vtab') {
    const outcome = await vtabProtocol(
      makeModel,
      { train800: data.select, val200: data.val, train800val200: data.trainval, test: data.test },
      {
        ...trainOptions(config, onEvent),
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
      {
        ...trainOptions(config, onEvent),
        checkpointDir: folder.path('checkpoints'),
        resume: config.train.resume,
      },
    );
    histories.push({ label: 'train', history: result.history });
  }
  const test = await evaluate(model, data.test, { batchSize: config.train.batchSize });
  await saveAdapter(model, folder.path('adapter'));
  await folder.writeFile(
    'predictions.jsonl',
    test.predictions.map((p, i) => JSON.stringify({ index: i, predicted: p })).join('\n') + '\n',
  );
  const parameters = model.parameterReport();
  const artifacts = model.artifacts()['ship-hierarchy'];
  const wallSeconds = (performance.now() - started) / 1000;
  const summary = {
    method: config.method.name,
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
    ...(artifacts && Array.isArray(artifacts.affinity) && Array.isArray(artifacts.starts)
      ? { affinity: { matrix: artifacts.affinity as number[][], starts: artifacts.starts as number[] } }
      : {}),
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

async function modelFromAdapter(
  config: RunConfig,
  adapterDir: string,
  ctx: CommandContext,
): Promise<PeftModel> {
  const base = await loadBase(config, ctx);
  return loadAdapter(base.model, adapterDir, { factories: ALL_PLUGIN_FACTORIES });
}

/** `peft eval`: a saved adapter on a split (default test). */
export async function evalCommand(
  config: RunConfig,
  ctx: CommandContext,
  options: { adapter: string; split: 'test' | 'val' | 'trainval' },
): Promise<void> {
  await backendFor(config, ctx);
  const model = await modelFromAdapter(config, options.adapter, ctx);
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
  config: RunConfig,
  ctx: CommandContext,
  options: { adapter: string; images: string[] },
): Promise<void> {
  if (options.images.length === 0) throw new UsageError('peft predict needs at least one image path');
  await backendFor(config, ctx);
  const model = await modelFromAdapter(config, options.adapter, ctx);
  const [h, w] = model.config.imageSize;
  const channels = model.config.channels as 1 | 3;
  for (const path of options.images) {
    const pixels = normalize(
      await decodeImage(path, { size: [h, w], channels, limits: inputLimits(config) }),
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

/** The prompt-free model over the run's backbone and its data: what `hierarchy` and `prototypes` analyse. */
async function frozenBackboneOnTrainval(config: RunConfig, ctx: CommandContext) {
  await backendFor(config, ctx);
  const base = await loadBase(config, ctx);
  const splits = await readRunSplits(config, base.model.config);
  return { data: buildRunData(config, base.model.config, splits), model: createPeftModel(base.model, []) };
}

/** `peft hierarchy`: layer affinity of the frozen backbone on the training split, hierarchy starts, heatmap. */
export async function hierarchyCommand(
  config: RunConfig,
  ctx: CommandContext,
  options: { threshold: number },
): Promise<void> {
  const { data, model } = await frozenBackboneOnTrainval(config, ctx);
  ctx.progress.line(`features of ${data.trainval.size} training images through the frozen backbone`);
  const { affinity, starts } = await analyseLayers(
    model,
    asPrepareData(data.trainval, config.train.batchSize),
    {
      threshold: options.threshold,
    },
  );
  const folder = new RunFolder(config.out);
  await folder.create();
  await folder.writeJson('hierarchy.json', { threshold: options.threshold, token: 'cls', starts, affinity });
  await folder.writeFile('affinity.png', await affinityHeatmapPng(affinity, starts));
  model.dispose();
  ctx.out.write(
    `hierarchy starts ${starts.join(', ')} (τ = ${options.threshold}); wrote ${folder.path('hierarchy.json')} and affinity.png\n`,
  );
}

/** `peft prototypes`: k-means over last-block CLS features → prototypes.safetensors. */
export async function prototypesCommand(
  config: RunConfig,
  ctx: CommandContext,
  options: { k: number },
): Promise<void> {
  const { data, model } = await frozenBackboneOnTrainval(config, ctx);
  const dim = model.backbone.config.dim;
  const rows: Float32Array[] = [];
  for await (const batch of data.trainval.batches({ batchSize: config.train.batchSize })) {
    const frozen = model.frozenFeatures(batch.images as Tensor4D);
    const [last] = layerFeatures(frozen.blockOutputs.slice(-1), 'cls');
    rows.push((last as tf.Tensor).dataSync() as Float32Array);
    tf.dispose([...frozen.blockOutputs, ...frozen.attnLogits, last as tf.Tensor]);
    ctx.progress.bar(
      'features',
      rows.reduce((n, r) => n + r.length / dim, 0),
      data.trainval.size,
    );
  }
  const all = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let offset = 0;
  for (const r of rows) {
    all.set(r, offset);
    offset += r.length;
  }
  ctx.progress.line(`k-means with k = ${options.k} on ${all.length / dim} feature vectors`);
  const result = kmeans(all, all.length / dim, dim, {
    k: options.k,
    rng: new Rng(config.seed).split('kmeans'),
  });
  const folder = new RunFolder(config.out);
  await folder.create();
  await folder.writeFile(
    'prototypes.safetensors',
    serializeSafetensors([{ name: 'prototypes', shape: [options.k, dim], data: result.centroids }], {
      inertia: String(result.inertia),
      iterations: String(result.iterations),
    }),
  );
  model.dispose();
  ctx.out.write(
    `wrote ${options.k} prototypes to ${folder.path('prototypes.safetensors')} (inertia ${result.inertia.toFixed(2)})\n`,
  );
}

/** `peft export`: check that a run's adapter loads on its base, then copy it to a folder of its own. */
export async function exportCommand(
  config: RunConfig,
  ctx: CommandContext,
  options: { run: string; to: string },
): Promise<void> {
  await backendFor(config, ctx);
  const adapterDir = join(options.run, 'adapter');
  const model = await modelFromAdapter(config, adapterDir, ctx);
  model.dispose();
  await mkdir(options.to, { recursive: true });
  for (const file of [ADAPTER_WEIGHTS_FILE, ADAPTER_CONFIG_FILE])
    await copyFile(join(adapterDir, file), join(options.to, file));
  ctx.out.write(`exported ${adapterDir} → ${options.to} (verified: loads on ${config.model.weights})\n`);
}

/**
 * `peft inspect`: tensors, detected layout and architecture, parameter count of a weights file; for a Hub
 * reference, first what was found (commit, cache path, the repository's pretrained config).
 */
export async function inspectCommand(
  ctx: CommandContext,
  file: string,
  options: { heads?: number },
): Promise<void> {
  const resolved = await resolveWeightsArgument(file, ctx, { describe: true });
  let bytes: Uint8Array;
  try {
    bytes = await readFile(resolved.path);
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as Error).message}`);
  }
  const tensors = new Map<string, HostTensor>();
  const rows: string[] = [];
  const isZip = bytes[0] === 0x50 && bytes[1] === 0x4b;
  let heads = options.heads ?? pretrainedHints(resolved.hub?.pretrained).heads;
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
  config: RunConfig,
  ctx: CommandContext,
  options: { iters: number },
): Promise<void> {
  const backend = await backendFor(config, ctx);
  const base = await loadBase(config, ctx);
  const vit: VisionTransformer = base.model;
  const model = createPeftModel(vit, methodPlugins(config.method.name, config.method.options), {
    seed: config.seed,
    numClasses: 10,
  });
  if (config.method.name === 'ship') {
    // Speed does not depend on the data: a fixed three-hierarchy split and a random-size prototype bank.
    const depth = vit.config.depth;
    const starts = (config.method.options.starts as number[] | undefined) ?? [
      0,
      Math.floor(depth / 2),
      depth - 1,
    ];
    model.restoreArtifacts({ 'ship-prompts': { starts, prototypeCount: 200 } });
  }
  const batch = config.train.microBatch ?? config.train.batchSize;
  const [h, w] = vit.config.imageSize;
  const images = tf.randomNormal([batch, h, w, vit.config.channels], 0, 1, 'float32', 1) as Tensor4D;
  const labels = tf.tensor1d(
    Array.from({ length: batch }, (_, i) => i % 10),
    'int32',
  );
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
  const base = config.model.weights ? await loadBase(config, ctx) : null;
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
