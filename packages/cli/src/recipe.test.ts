import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSafetensors } from '@peftjs/core/safetensors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyDataLimits, checkCombinations } from './checks.js';
import { type ConfigSources, resolveRunConfig } from './config.js';
import { BUILTIN_METHODS } from './methods.js';
import { RECIPE_FORMAT, RECIPE_METADATA_KEY } from './recipe.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BUNDLED = join(repoRoot, 'models/peftjs-vit-tiny12-p8-32.safetensors');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peftjs-recipe-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const RECIPE = {
  format: RECIPE_FORMAT,
  description: 'a test recipe',
  train: { epochs: 30, warmupEpochs: 3, lr: 0.003, weightDecay: 0.0001 },
  methods: {
    ship: { options: { threshold: 0.97, hierarchy: { prototypes: 50 } } },
    full: { train: { lr: 0.0003 } },
  },
};

/** Weights (never loaded here) with a sidecar recipe. */
async function weightsWithSidecar(name: string, recipe: unknown = RECIPE): Promise<string> {
  const weights = join(dir, `${name}.safetensors`);
  await writeFile(weights, '');
  await writeFile(`${weights}.recipe.json`, JSON.stringify(recipe));
  return weights;
}

async function refusal(sources: ConfigSources): Promise<string> {
  try {
    await resolveRunConfig(sources);
  } catch (error) {
    expect((error as Error).name).toBe('UsageError');
    return (error as Error).message;
  }
  throw new Error('expected a refusal');
}

describe("a backbone's recipe", () => {
  it('sits under everything else: applied where nobody set a value, listed where someone did', async () => {
    const weights = await weightsWithSidecar('sidecar');
    const run = await resolveRunConfig({
      flags: [
        ['model.weights', weights],
        ['train.lr', 0.01],
      ],
    });
    expect(run.config.train).toMatchObject({ epochs: 30, warmupEpochs: 3, lr: 0.01, weightDecay: 0.0001 });
    expect(run.config.method.options).toMatchObject({ threshold: 0.97, hierarchy: { prototypes: 50 } });
    expect(run.recipe).toMatchObject({
      source: `${weights}.recipe.json`,
      reason: 'found next to model.weights',
      description: 'a test recipe',
      applied: { 'train.epochs': 30, 'method.options.hierarchy.prototypes': 50 },
      overridden: { 'train.lr': { value: 0.01, by: '--train.lr' } },
    });
    expect(run.provenance.describe('train.epochs')).toBe(`recipe ${weights}.recipe.json`);
    expect(run.provenance.userSet('train.epochs')).toBe(false);
    // Per-method training values replace the shared ones for that method only.
    const full = await resolveRunConfig({
      flags: [
        ['model.weights', weights],
        ['method.name', 'full'],
      ],
    });
    expect(full.config.train.lr).toBe(0.0003);
  });

  it("keeps its warm-up's share of the run when the run sets its own epochs", async () => {
    const weights = await weightsWithSidecar('scaled');
    const run = await resolveRunConfig({
      flags: [
        ['model.weights', weights],
        ['train.epochs', 5],
      ],
    });
    expect(run.config.train).toMatchObject({ epochs: 5, warmupEpochs: 1 });
    expect(run.notes).toEqual([
      'train.warmupEpochs 1: the recipe warms up 3 of 30 epochs; scaled to the 5 epochs of --train.epochs',
    ]);
    const own = await resolveRunConfig({
      flags: [
        ['model.weights', weights],
        ['train.epochs', 5],
        ['train.warmupEpochs', 2],
      ],
    });
    expect(own.config.train.warmupEpochs).toBe(2);
    expect(own.notes).toEqual([]);
  });

  it('gives way to a preset, and is switched off by model.recipe: none', async () => {
    const weights = await weightsWithSidecar('preset');
    const preset = await resolveRunConfig({
      flags: [
        ['model.weights', weights],
        ['preset', 'vtab:dtd'],
      ],
    });
    expect(preset.config.method.options).toMatchObject({ threshold: 0.98, hierarchy: { prototypes: 50 } });
    expect(preset.provenance.describe('method.options.threshold')).toBe('preset vtab:dtd');
    const none = await resolveRunConfig({
      flags: [
        ['model.weights', weights],
        ['model.recipe', 'none'],
      ],
    });
    expect(none.recipe).toBeNull();
    expect(none.config.train.epochs).toBe(100);
  });

  it('travels inside a safetensors file as metadata, or is named by model.recipe', async () => {
    const weights = join(dir, 'embedded.safetensors');
    await writeSafetensors(weights, [{ name: 'x', shape: [1], data: new Float32Array(1) }], {
      [RECIPE_METADATA_KEY]: JSON.stringify({ ...RECIPE, description: 'embedded' }),
    });
    const run = await resolveRunConfig({ flags: [['model.weights', weights]] });
    expect(run.recipe).toMatchObject({ description: 'embedded', reason: 'embedded in model.weights' });
    const named = join(dir, 'named.json');
    await writeFile(named, JSON.stringify({ ...RECIPE, description: 'named', train: { epochs: 7 } }));
    const chosen = await resolveRunConfig({
      flags: [
        ['model.weights', weights],
        ['model.recipe', named],
      ],
    });
    expect(chosen.recipe).toMatchObject({ description: 'named', reason: 'named by --model.recipe' });
    expect(chosen.config.train.epochs).toBe(7);
  });

  it('is refused by name when it is not a recipe, and its bad values are blamed on it', async () => {
    const broken = await weightsWithSidecar('broken', { format: 'other' });
    expect(await refusal({ flags: [['model.weights', broken]] })).toMatch(
      new RegExp(
        `^${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.recipe\\.json: not a ${RECIPE_FORMAT} recipe: format: `,
      ),
    );
    const bad = await weightsWithSidecar('bad', { ...RECIPE, train: { epochs: -1 } });
    expect(await refusal({ flags: [['model.weights', bad]] })).toMatch(
      /recipe .*bad\.safetensors\.recipe\.json: option "train\.epochs": /,
    );
    expect(await refusal({ flags: [['model.recipe', join(dir, 'missing.json')]] })).toMatch(
      /^--model\.recipe: cannot read recipe .*missing\.json/,
    );
  });

  it('the bundled backbone carries one that every built-in method accepts', async () => {
    const recipe = JSON.parse(readFileSync(`${BUNDLED}.recipe.json`, 'utf8')) as { methods: object };
    expect(Object.keys(recipe.methods).every((m) => BUILTIN_METHODS.some((b) => b.name === m))).toBe(true);
    for (const method of BUILTIN_METHODS) {
      const run = await resolveRunConfig({
        flags: [
          ['model.weights', BUNDLED],
          ['method.name', method.name],
        ],
      });
      expect(run.recipe?.reason, method.name).toBe('found next to model.weights');
      expect(run.config.train).toMatchObject({ epochs: 30, warmupEpochs: 3, batchSize: 64 });
    }
  });
});

describe('combinations refused or noted before any data is read', () => {
  it('refuses a warm-up as long as the run, naming both values and where they came from', async () => {
    const run = await resolveRunConfig({
      flags: [
        ['train.epochs', 5],
        ['train.warmupEpochs', 5],
      ],
    });
    expect(() => checkCombinations(run)).toThrow(
      'train.warmupEpochs = 5 (--train.warmupEpochs) is not below train.epochs = 5 (--train.epochs): the ' +
        'learning rate would still be warming up when training ends. Lower train.warmupEpochs (e.g. ' +
        '--train.warmupEpochs=0) or raise train.epochs',
    );
    const notes = checkCombinations(
      await resolveRunConfig({
        flags: [
          ['train.epochs', 3],
          ['train.evalEvery', 5],
        ],
      }),
    );
    expect(notes).toEqual([
      'train.evalEvery = 5 (--train.evalEvery) exceeds train.epochs = 3 (--train.epochs): only epochs 1 and 3 ' +
        'are evaluated, so the epoch count is chosen between those two',
    ]);
  });

  it('caps a default bounded by the data with a note, and refuses a value someone set', async () => {
    const counts = { trainImages: 170, trainSplit: 'train800.txt: 170 images', numClasses: 10 };
    const fitted = applyDataLimits(await resolveRunConfig({}), counts);
    expect(fitted.run.config.method.options).toMatchObject({ hierarchy: { prototypes: 170 } });
    expect(fitted.notes).toEqual([
      'method.options.hierarchy.prototypes 200 (default) capped at 170: k-means needs an image per prototype ' +
        'and the smallest training split has 170 (train800.txt: 170 images)',
    ]);
    const set = await resolveRunConfig({ flags: [['method.options.hierarchy.prototypes', 200]] });
    expect(() => applyDataLimits(set, counts)).toThrow(
      '--method.options.hierarchy.prototypes: method.options.hierarchy.prototypes = 200 is more than this data ' +
        'allows (170): k-means needs an image per prototype and the smallest training split has 170 ' +
        '(train800.txt: 170 images). Set it to at most 170, e.g. --method.options.hierarchy.prototypes=170',
    );
  });
});
