/**
 * `peft train` → `peft eval` / `export` / `predict` for every method the CLI offers: the adapter a run writes loads
 * again on the same base (whose fingerprint training did not change) and gives the run's own test numbers.
 */
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@peftjs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../src/main.js';
import { makeMnistTask, peft, writeTinyWeights } from './cli-fixtures.js';

const METHODS: readonly [string, string, string][] = [
  ['linear', 'linear', '{}'],
  ['full', 'full', '{}'],
  ['bitfit', 'bitfit', '{}'],
  ['vpt-shallow', 'vpt', '{"mode":"shallow","tokens":2}'],
  ['vpt-deep', 'vpt', '{"mode":"deep","tokens":2}'],
  ['lora', 'lora', '{"rank":2,"alpha":4}'],
  ['adapter', 'adapter', '{"bottleneck":4}'],
  ['ssf', 'ssf', '{}'],
  ['ship', 'ship', '{"threshold":0.9,"promptLength":2,"hierarchy":{"prototypes":4}}'],
];

describe('every method round-trips through its run folder', () => {
  let dir: string;
  let config: string;

  beforeAll(async () => {
    await initBackend({ prefer: 'wasm', log: false });
    dir = await mkdtemp(join(tmpdir(), 'peftjs-roundtrip-'));
    await makeMnistTask(join(dir, 'vtab'));
    const weights = await writeTinyWeights(dir);
    config = join(dir, 'run.yaml');
    await writeFile(
      config,
      [
        'backend: wasm',
        'seed: 3',
        `model: { weights: ${weights} }`,
        `data: { format: vtab, root: ${join(dir, 'vtab')}, task: mnist, numClasses: 10 }`,
        'train: { epochs: 2, batchSize: 10, lr: 0.01, warmupEpochs: 0, evalEvery: 1, checkpointEvery: 1 }',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each(METHODS)('%s', async (label, method, options) => {
    const run = join(dir, label);
    const common = ['--config', config, `--method.name=${method}`, `--method.options=${options}`];
    const trained = await peft('train', ...common, `--out=${run}`);
    expect(trained.code, trained.err).toBe(EXIT.ok);
    const results = JSON.parse(await readFile(join(run, 'results.json'), 'utf8')) as {
      test: { top1: number };
    };

    const evaluated = await peft('eval', ...common, '--adapter', join(run, 'adapter'));
    expect(evaluated.code, evaluated.err).toBe(EXIT.ok);
    expect((JSON.parse(evaluated.out) as { top1: number }).top1).toBeCloseTo(results.test.top1, 10);

    const exported = await peft('export', ...common, '--run', run, '--to', join(dir, `${label}-exported`));
    expect(exported.code, exported.err).toBe(EXIT.ok);
    expect(exported.out).toMatch(/verified/);

    const images = [60, 61, 62, 63].map((i) => join(dir, 'vtab', 'mnist', 'images', `${i}.png`));
    const predicted = await peft(
      'predict',
      ...common,
      '--adapter',
      join(dir, `${label}-exported`),
      ...images,
    );
    expect(predicted.code, predicted.err).toBe(EXIT.ok);
    const labels = predicted.out
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { predicted: number }).predicted);
    const fromRun = (await readFile(join(run, 'predictions.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .slice(0, 4)
      .map((l) => (JSON.parse(l) as { predicted: number }).predicted);
    expect(labels).toEqual(fromRun);
  });
});
