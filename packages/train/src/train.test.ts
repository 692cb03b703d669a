import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPeftModel, initBackend, PeftError, type PeftModel, Rng, tf } from '@peftjs/core';
import { readSafetensors } from '@peftjs/core/safetensors';
import { expectNoLeakedTensors } from '@peftjs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_JSON, CHECKPOINT_TENSORS, type CheckpointInfo } from './checkpoint.js';
import { arrayData, type TrainingData } from './data.js';
import { evaluate } from './evaluate.js';
import { AdamW } from './optimizers.js';
import { accumulateGradients, trainStep } from './step.js';
import { type MnistSplit, type TinyModel, mnistDigits, tinyModel } from '@peftjs/test-fixtures';
import { type TrainOptions, train } from './trainer.js';
import { TEST_SELECTION_WARNING, type TrainEvent } from './types.js';
import { vtabProtocol } from './vtab.js';

let dir: string;
beforeAll(async () => {
  await initBackend({ prefer: 'wasm', log: false });
  dir = await mkdtemp(join(tmpdir(), 'peftjs-train-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** MNIST digits as `TrainingData`. */
function mnistData(split: MnistSplit, start: number, count: number): TrainingData {
  const { images, labels } = mnistDigits(split, start, count);
  return arrayData(images, labels, [28, 28, 1], 10);
}

const trainSplit = () => mnistData('train', 0, 64);
const valSplit = () => mnistData('train', 64, 32);

/** Wraps a split, counting how often it is iterated (each evaluation iterates once). */
function counted(data: TrainingData): TrainingData & { calls: number } {
  const wrapper = {
    size: data.size,
    numClasses: data.numClasses,
    calls: 0,
    batches(options: Parameters<TrainingData['batches']>[0]) {
      wrapper.calls++;
      return data.batches(options);
    },
  };
  return wrapper;
}

/** Replaces every image of epoch `bad` with NaN. */
function poisoned(data: TrainingData, bad: number): TrainingData {
  return {
    size: data.size,
    numClasses: data.numClasses,
    async *batches(options) {
      for await (const batch of data.batches(options)) {
        if (options.epoch !== bad) {
          yield batch;
          continue;
        }
        const images = tf.fill(batch.images.shape, Number.NaN) as tf.Tensor4D;
        try {
          yield { images, labels: batch.labels };
        } finally {
          images.dispose();
        }
      }
    },
  };
}

async function trainableValues(model: PeftModel): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const e of model.registry.trainableEntries()) out[e.name] = (await e.variable.data()) as Float32Array;
  return out;
}

describe('arrayData', () => {
  it('orders batches by (seed, epoch) through Rng and honours dropLast', async () => {
    const labels = Int32Array.from({ length: 10 }, (_, i) => i);
    const data = arrayData(new Float32Array(10 * 4), labels, [2, 2, 1], 10);
    const order = async (epoch: number, dropLast: boolean, shuffle = true) => {
      const seen: number[][] = [];
      for await (const b of data.batches({ batchSize: 4, shuffle, seed: 'x', epoch, dropLast })) {
        seen.push(Array.from(b.labels.dataSync()));
      }
      return seen;
    };
    const expected = new Rng('x').split('epoch:3').permutation(10);
    expect((await order(3, false)).flat()).toEqual(expected);
    expect(await order(3, true)).toEqual([expected.slice(0, 4), expected.slice(4, 8)]);
    expect(await order(4, true)).not.toEqual(await order(3, true));
    expect((await order(0, false, false)).flat()).toEqual([...labels]);
    expect(() => arrayData(new Float32Array(3), labels, [2, 2, 1], 10)).toThrow(/arrayData/);
    expect(() => arrayData(new Float32Array(40), labels, [2, 2, 1], 5)).toThrow(/labels\[5\]/);
  });
});

describe('training on a tiny ViT (MNIST)', () => {
  it('evaluate: top-1/top-5, per-class accuracy and confusion agree with predict()', async () => {
    const { model, dispose } = tinyModel();
    const data = valSplit();
    const m = await evaluate(model, data, { batchSize: 12 });
    const { images, labels } = mnistDigits('train', 64, 32);
    const logits = model.predict(tf.tensor4d(images, [32, 28, 28, 1]));
    const predicted = Array.from(tf.argMax(logits, 1).dataSync());
    expect(m.predictions).toEqual(predicted);
    expect(m.count).toBe(32);
    expect(m.top1).toBeCloseTo(predicted.filter((p, i) => p === labels[i]).length / 32, 12);
    expect(m.top5).toBeGreaterThanOrEqual(m.top1);
    expect(m.confusion.flat().reduce((a, b) => a + b, 0)).toBe(32);
    m.perClass.forEach((acc, c) => {
      const row = m.confusion[c] as number[];
      const total = row.reduce((a, b) => a + b, 0);
      if (total === 0) expect(acc).toBeNaN();
      else expect(acc).toBeCloseTo((row[c] as number) / total, 12);
    });
    tf.dispose(logits);
    const three = createPeftModel(model.backbone, [], { numClasses: 3, seed: 1 });
    const small = mnistDigits('train', 0, 8);
    const m3 = await evaluate(
      three,
      arrayData(
        small.images,
        small.labels.map((l) => l % 3),
        [28, 28, 1],
        3,
      ),
      {
        batchSize: 8,
      },
    );
    expect(m3.top5).toBeNull();
    await expect(evaluate(three, data, { batchSize: 8 })).rejects.toThrow(/numClasses 10/);
    dispose();
  });

  it('evaluate: the top-k classes with their softmax probabilities, and progress after each batch', async () => {
    const { model, dispose } = tinyModel();
    const data = valSplit();
    const progress: [number, number][] = [];
    const before = tf.memory().numTensors;
    const m = await evaluate(model, data, {
      batchSize: 12,
      topK: 3,
      onBatch: (done, total) => progress.push([done, total]),
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(progress).toEqual([
      [12, 32],
      [24, 32],
      [32, 32],
    ]);
    const { images } = mnistDigits('train', 64, 32);
    const probabilities = tf.tidy(() => tf.softmax(model.predict(tf.tensor4d(images, [32, 28, 28, 1]))));
    const rows = probabilities.arraySync() as number[][];
    probabilities.dispose();
    expect(m.ranked).toHaveLength(32);
    m.ranked?.forEach((r, i) => {
      const row = rows[i] as number[];
      const order = row.map((p, c) => [p, c] as const).sort((a, b) => b[0] - a[0]);
      expect(r.classes).toEqual(order.slice(0, 3).map(([, c]) => c));
      expect(r.probabilities.map((p) => p.toFixed(5))).toEqual(order.slice(0, 3).map(([p]) => p.toFixed(5)));
      expect(r.classes[0]).toBe(m.predictions[i]);
    });
    expect((await evaluate(model, data, { batchSize: 32 })).ranked).toBeUndefined();
    dispose();
  });

  it('micro-batch gradient accumulation equals full-batch gradients (within 1e-5) without leaking', async () => {
    const { model, dispose } = tinyModel({ prompt: true });
    const { images, labels } = mnistDigits('train', 0, 16);
    const x = tf.tensor4d(images, [16, 28, 28, 1]);
    const y = tf.tensor1d(labels, 'int32');
    const full = accumulateGradients(model, x, y);
    const micro = accumulateGradients(model, x, y, { microBatch: 4 });
    expect(Object.keys(micro.grads).sort()).toEqual(['head.bias', 'head.weight', 'prompt.tokens']);
    expect(Math.abs(micro.loss - full.loss)).toBeLessThan(1e-5);
    expect(Math.abs((micro.parts.ce as number) - (full.parts.ce as number))).toBeLessThan(1e-5);
    for (const [name, g] of Object.entries(full.grads)) {
      const diff = tf.max(tf.abs(tf.sub(g, micro.grads[name] as tf.Tensor))).dataSync()[0] as number;
      expect(diff, name).toBeLessThan(1e-5);
    }
    tf.dispose([...Object.values(full.grads), ...Object.values(micro.grads)]);
    const opt = new AdamW({ lr: 1e-3, weightDecay: 0.01 });
    await expectNoLeakedTensors(() => trainStep(model, opt, x, y, { microBatch: 5, lr: 1e-3, epoch: 0 }));
    opt.dispose();
    tf.dispose([x, y]);
    dispose();
  });

  const base: TrainOptions = {
    epochs: 4,
    batchSize: 16,
    microBatch: 8,
    lr: 5e-3,
    weightDecay: 1e-3,
    warmupEpochs: 1,
    seed: 1,
    restoreBest: false,
  };

  it('resumes bit-identically (stopAfterEpochs, then an abort, then the rest) with stochastic depth', async () => {
    const run = async (options: Partial<TrainOptions>, resume = false) => {
      const tiny = tinyModel({ dropPathRate: 0.1, prompt: true });
      const before = tf.memory().numTensors;
      try {
        const result = await train(
          tiny.model,
          { train: trainSplit(), val: valSplit() },
          {
            ...base,
            ...options,
            resume,
          },
        );
        expect(tf.memory().numTensors).toBe(before);
        return {
          result,
          values: await trainableValues(tiny.model),
          forwards: tiny.model.forwardCounter,
        };
      } finally {
        tiny.dispose();
      }
    };
    const whole = await run({ checkpointDir: join(dir, 'whole') });
    const split = join(dir, 'split');
    await run({ checkpointDir: split, stopAfterEpochs: 1 });
    const info = JSON.parse(await readFile(join(split, CHECKPOINT_JSON), 'utf8')) as CheckpointInfo;
    expect(info.epochsCompleted).toBe(1);
    expect(info.forwardCounter).toBe(8); // 4 steps × 2 micro-batches
    const names = (await readSafetensors(join(split, CHECKPOINT_TENSORS))).names();
    expect(names).toContain('param/prompt.tokens');
    expect(names).toContain('opt/m/head.weight');
    expect(names).toContain('opt/v/prompt.tokens');
    expect(names).toContain('best/head.bias');
    // Abort during epoch 2 (after the epoch-1 checkpoint): the partial epoch is discarded.
    const controller = new AbortController();
    await expect(
      run(
        {
          checkpointDir: split,
          signal: controller.signal,
          onEvent: (e) => {
            if (e.type === 'step' && e.epoch === 2) controller.abort(new Error('stop now'));
          },
        },
        true,
      ),
    ).rejects.toThrow('stop now');
    const resumed = await run({ checkpointDir: split }, true);
    expect(resumed.values).toEqual(whole.values);
    expect(resumed.forwards).toBe(whole.forwards);
    expect(resumed.result.history.map((h) => h.loss)).toEqual(whole.result.history.map((h) => h.loss));
    expect(resumed.result.history.map((h) => h.val)).toEqual(whole.result.history.map((h) => h.val));
    expect(resumed.result.best).toEqual(whole.result.best);
    expect(resumed.result.final.test).toBeUndefined();
    expect(whole.result.globalStep).toBe(16);
    // Epoch e ≥ 1 runs at f(e − 1); one warm-up epoch, so f(1), f(2) are already on the cosine (t_initial 4).
    const cosine = (t: number) => 1e-5 + 0.5 * (5e-3 - 1e-5) * (1 + Math.cos((Math.PI * t) / 4));
    expect(whole.result.history.map((h) => h.lr)).toEqual([1e-6, 1e-6, cosine(1), cosine(2)]);
    // Learning happened.
    const losses = whole.result.history.map((h) => h.loss);
    expect(losses[3]).toBeLessThan(losses[0] as number);
    // A changed option is refused by name.
    await expect(run({ checkpointDir: split, lr: 1e-3 }, true)).rejects.toThrow(/option "lr"/);
  });

  it('stops on a NaN loss naming epoch and step, keeping the last good checkpoint', async () => {
    const { model, dispose } = tinyModel();
    const out = join(dir, 'nan');
    const before = tf.memory().numTensors;
    const error = await train(
      model,
      { train: poisoned(trainSplit(), 1) },
      { ...base, checkpointDir: out },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PeftError);
    expect((error as Error).message).toMatch(
      /non-finite loss \(NaN\) at epoch 1, step 4 \(batch 0 of the epoch\)/,
    );
    expect((error as Error).message).toMatch(/last good checkpoint \(after epoch 0\) in .*nan was kept/);
    expect(tf.memory().numTensors).toBe(before);
    const info = JSON.parse(await readFile(join(out, CHECKPOINT_JSON), 'utf8')) as CheckpointInfo;
    expect(info.epochsCompleted).toBe(1);
    const file = await readSafetensors(join(out, CHECKPOINT_TENSORS));
    for (const name of file.names()) expect(file.getFloat32(name).every(Number.isFinite), name).toBe(true);
    // The parameters in memory are still the good ones.
    expect(Object.values(await trainableValues(model)).every((v) => v.every(Number.isFinite))).toBe(true);
    // Parameters that blow up in the last step of an epoch are caught before the checkpoint is written.
    const huge = join(dir, 'huge');
    await expect(
      train(
        model,
        { train: trainSplit() },
        {
          ...base,
          epochs: 1,
          batchSize: 64,
          optimizer: 'sgd',
          schedule: 'constant',
          lr: Number.MAX_VALUE,
          checkpointDir: huge,
        },
      ),
    ).rejects.toThrow(
      /tensor "param\/head\.\w+" is not finite after epoch 0 .*no checkpoint had been written/,
    );
    await expect(readFile(join(huge, CHECKPOINT_JSON))).rejects.toThrow(/ENOENT/);
    dispose();
  });

  it('selection: val evaluates test once; max-test-over-epochs is explicit and flagged', async () => {
    const tiny = tinyModel();
    const events: TrainEvent[] = [];
    const test = counted(valSplit());
    const options = { ...base, epochs: 3, evalEvery: 2, microBatch: undefined, restoreBest: true };
    const r = await train(
      tiny.model,
      { train: trainSplit(), val: valSplit(), test },
      {
        ...options,
        onEvent: (e) => {
          events.push(e);
        },
      },
    );
    expect(test.calls).toBe(1);
    expect(r.selection).toBe('val');
    expect(r.selectionWarning).toBeUndefined();
    expect(r.final.test?.count).toBe(32);
    expect(r.history.map((h) => h.val !== undefined)).toEqual([true, false, true]);
    expect(r.best.split).toBe('val');
    expect(r.final.val?.top1).toBe(r.best.metric);
    expect(events.map((e) => e.type)).toEqual([
      ...['epoch-start', 'step', 'step', 'step', 'step', 'epoch-end', 'eval'],
      ...['epoch-start', 'step', 'step', 'step', 'step', 'epoch-end'],
      ...['epoch-start', 'step', 'step', 'step', 'step', 'epoch-end', 'eval'],
      'done',
    ]);
    const steps = events.flatMap((e) => (e.type === 'step' ? [e.step] : []));
    expect(steps).toEqual([...Array(12).keys()]);
    await expect(
      train(tiny.model, { train: trainSplit() }, { ...options, selection: 'max-test-over-epochs' }),
    ).rejects.toThrow(/option "selection"/);
    const counting = counted(valSplit());
    const t = await train(
      tiny.model,
      { train: trainSplit(), test: counting },
      {
        ...options,
        selection: 'max-test-over-epochs',
      },
    );
    expect(counting.calls).toBe(2);
    expect(t.selection).toBe('max-test-over-epochs');
    expect(t.selectionWarning).toBe(TEST_SELECTION_WARNING);
    expect(t.best.metric).toBe(Math.max(...t.history.flatMap((h) => (h.test ? [h.test.top1] : []))));
    tiny.dispose();
  });

  it('vtabProtocol selects on val200 only, refits on train800val200 and evaluates test once', async () => {
    const owned = new Map<PeftModel, TinyModel>();
    const factory = () => {
      const tiny = tinyModel();
      owned.set(tiny.model, tiny);
      return tiny.model;
    };
    const release = (m: PeftModel) => owned.get(m)?.dispose();
    const test = counted(mnistData('t10k', 0, 32));
    const splits = {
      train800: mnistData('train', 0, 32),
      val200: valSplit(),
      train800val200: mnistData('train', 0, 64),
      test,
    };
    const stages: string[] = [];
    const r = await vtabProtocol(factory, splits, {
      ...base,
      epochs: 3,
      microBatch: undefined,
      warmupEpochs: 0,
      candidates: [{ lr: 1e-7 }, { lr: 1e-2 }],
      onStage: (s) => stages.push(s.phase === 'select' ? `select-${s.candidate}` : 'final'),
      release,
    });
    expect(stages).toEqual(['select-0', 'select-1', 'final']);
    expect(test.calls).toBe(1);
    expect(r.trials).toHaveLength(2);
    const bestTrial = r.trials.reduce((a, b) => ((b.best.metric ?? -1) > (a.best.metric ?? -1) ? b : a));
    expect(r.selected.candidate).toBe(bestTrial.candidate);
    expect(r.selected.epochs).toBe(bestTrial.best.epoch + 1);
    expect(r.final.epochsCompleted).toBe(r.selected.epochs);
    expect(r.final.history.every((h) => h.test === undefined)).toBe(true);
    expect(r.test.count).toBe(32);
    release(r.model);
  });
});
