/**
 * The bundled backbone as a new user meets it: `peft train` given the data and an epoch count only. The recipe that
 * travels with the weights (models/<weights>.recipe.json) supplies everything else, the warm-up scaled to the short
 * run, and five epochs of the default method (SHIP) beat the majority class on a mini-VTAB procedural task.
 *
 * The task is the `orientation` generator at 160 / 80 / 200 images (train800 / val200 / test) rather than the full
 * 800 / 200 / 1000, to keep the test to about a minute; nothing in the recipe depends on the split sizes except
 * SHIP's 50 prototypes, which 160 images still allow.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@peftjs/core';
import { generateTask } from '@peftjs/mini-vtab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../src/main.js';
import { peft } from './cli-fixtures.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const WEIGHTS = join(repoRoot, 'models/peftjs-vit-tiny12-p8-32.safetensors');

describe("the bundled backbone's recipe", () => {
  let dir: string;
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm', log: false });
    dir = await mkdtemp(join(tmpdir(), 'peftjs-recipe-run-'));
    await generateTask('orientation', {
      root: join(dir, 'tasks'),
      seed: 0,
      counts: { train800: 160, val200: 80, test: 200 },
    });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('trains 5 epochs above the majority class with no flag but the data and the epochs', async () => {
    const out = join(dir, 'run');
    const trained = await peft(
      'train',
      `--model.weights=${WEIGHTS}`,
      `--data.root=${join(dir, 'tasks')}`,
      '--data.task=orientation',
      '--train.epochs=5',
      '--backend=wasm',
      `--out=${out}`,
    );
    expect(trained.code, trained.err).toBe(EXIT.ok);
    expect(trained.err).toContain(`recipe: ${WEIGHTS}.recipe.json (found next to model.weights;`);
    expect(trained.err).toContain(
      'note: train.warmupEpochs 1: the recipe warms up 3 of 30 epochs; scaled to the 5 epochs of --train.epochs',
    );
    const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as {
      config: { method: { name: string; options: Record<string, unknown> }; train: Record<string, unknown> };
    };
    expect(manifest.config.method.name).toBe('ship');
    expect(manifest.config.method.options).toMatchObject({
      threshold: 0.97,
      promptLength: 10,
      hierarchy: { prototypes: 50 },
    });
    expect(manifest.config.train).toMatchObject({
      epochs: 5,
      warmupEpochs: 1,
      lr: 0.003,
      schedule: 'cosine-step',
    });
    const labels = (await readFile(join(dir, 'tasks', 'orientation', 'test.txt'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => line.split(' ')[1]);
    const counts = new Map<string, number>();
    for (const label of labels) counts.set(label as string, (counts.get(label as string) ?? 0) + 1);
    const majority = Math.max(...counts.values()) / labels.length;
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as {
      test: { top1: number };
    };
    expect(results.test.top1).toBeGreaterThan(majority);
    // The run folder alone reproduces the test accuracy.
    const evaluated = await peft('eval', out);
    expect(evaluated.code, evaluated.err).toBe(EXIT.ok);
    expect((JSON.parse(evaluated.out) as { top1: number }).top1).toBeCloseTo(results.test.top1, 10);
  });
});
