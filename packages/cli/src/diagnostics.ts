import {
  type VisionTransformer,
  detectLayout,
  inferVitConfig,
  pretrainedHints,
  readNpz,
  toTimmStateDict,
} from '@peftjs/backbone';
import { type Tensor4D, createPeftModel, tf } from '@peftjs/core';
import { readRegularFile } from '@peftjs/core/internal';
import { type HostTensor, parseSafetensors } from '@peftjs/core/safetensors';
import { formatProblem } from '@peftjs/data';
import { type CommandContext, backendFor, loadBase, openRun } from './commands.js';
import { methodPlugins, preparing } from './protocols.js';
import type { ResolvedRun } from './config.js';
import { checkRunSplits, readRunSplits } from './data-source.js';
import { UsageError } from './errors.js';
import { resolveWeightsArgument } from './hub-weights.js';
import type { RunConfig } from './options.js';

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
    bytes = await readRegularFile(resolved.path, Number.POSITIVE_INFINITY, () => '');
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
  run: ResolvedRun,
  ctx: CommandContext,
  options: { iters: number },
): Promise<void> {
  const { config, method } = run;
  const { backend, base } = await openRun(run, ctx);
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
  if (!config.model.weights)
    throw new UsageError('option "model.weights" is required: images are checked at the model input size');
  // The backend first, even though only the weights' geometry is used: tfjs then starts quietly.
  await backendFor(config, ctx);
  const modelConfig = (await loadBase(config, ctx)).model.config;
  const splits = await readRunSplits(config, modelConfig);
  const problems = await checkRunSplits(config, modelConfig, splits, ctx.progress);
  if (problems.length === 0) {
    ctx.out.write(
      `data ok: ${splits.lists.map((s) => `${s.name} ${s.samples.length}`).join(', ') || 'IDX files'}\n`,
    );
    return true;
  }
  ctx.out.write(`${problems.map((p) => formatProblem(p)).join('\n')}\n${problems.length} problem(s)\n`);
  return false;
}
