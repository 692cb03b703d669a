import { existsSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { z } from '@peftjs/core';
import { UsageError } from './errors.js';
import type { Provenance } from './provenance.js';

/**
 * A backbone's recipe: the training settings that suit its weights (epochs, warm-up, learning rate per method,
 * prompt counts …), travelling with the weights. It is the lowest layer of a run config above the schema defaults:
 * a preset, the config file and flags override any of it. See docs/guides/first-fine-tune.md ("Recipes").
 *
 * Where it is found (`model.recipe: auto`): a sidecar `<weights>.recipe.json` next to the weights file, else the
 * string under the key `peftjs.recipe` of the weights' safetensors `__metadata__`. `model.recipe` may also name a
 * recipe file, or be `none`.
 */

/** The format tag every recipe carries. */
export const RECIPE_FORMAT = 'peftjs-recipe/1';

/** Metadata key of a recipe embedded in a safetensors file. */
export const RECIPE_METADATA_KEY = 'peftjs.recipe';

const SECTION = z.record(z.string(), z.unknown());

/** A recipe file: `train` options for every method, and per method its own options and training overrides. */
export const RECIPE_SCHEMA = z.strictObject({
  format: z.literal(RECIPE_FORMAT).describe(`always "${RECIPE_FORMAT}"`),
  description: z.string().min(1).describe('what the recipe is and where its values come from'),
  train: SECTION.default({}).describe('train.* options for every method'),
  methods: z
    .record(
      z.string(),
      z.strictObject({
        options: SECTION.optional().describe('method.options for this method'),
        train: SECTION.optional().describe('train.* options for this method (over the shared ones)'),
      }),
    )
    .default({})
    .describe('per method name'),
});

/** A parsed recipe. */
export type Recipe = z.output<typeof RECIPE_SCHEMA>;

/** A recipe and why it applies. */
export interface FoundRecipe {
  readonly recipe: Recipe;
  /** Where it was read: a file, or `<weights> (safetensors metadata)`. */
  readonly source: string;
  /** Why it applies, for the console: `found next to model.weights`. */
  readonly reason: string;
}

type Mapping = Record<string, unknown>;

function parseRecipe(text: string, source: string): Recipe {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${source}: not a JSON recipe (${(error as Error).message})`);
  }
  const parsed = RECIPE_SCHEMA.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(
      `${source}: not a ${RECIPE_FORMAT} recipe: ${issue?.path.join('.') || 'recipe'}: ${issue?.message}`,
    );
  }
  return parsed.data;
}

/** The `__metadata__` recipe string of a safetensors file, or null (no file, no key, or an unreadable header). */
async function metadataRecipe(weights: string): Promise<string | null> {
  if (!weights.endsWith('.safetensors') || !existsSync(weights)) return null;
  const file = await open(weights, 'r').catch(() => null);
  if (!file) return null;
  try {
    const size = Buffer.alloc(8);
    await file.read(size, 0, 8, 0);
    const length = Number(size.readBigUInt64LE(0));
    // A header this large is not a weights file loadVit accepts; it reports that itself.
    if (!(length > 1 && length < 2 ** 27)) return null;
    const header = Buffer.alloc(length);
    await file.read(header, 0, length, 8);
    const meta = (JSON.parse(header.toString('utf8')) as { __metadata__?: Record<string, unknown> })
      .__metadata__;
    const text = meta?.[RECIPE_METADATA_KEY];
    return typeof text === 'string' ? text : null;
  } catch {
    return null;
  } finally {
    await file.close();
  }
}

const isHubReference = (weights: string) => /^(hf|timm):/.test(weights);

/**
 * The recipe `model.recipe` selects for `weights`: `none`, a path, or `auto` (sidecar, then safetensors metadata;
 * Hub references have none yet). `setting` is where `model.recipe` came from, for messages.
 */
export async function findRecipe(
  choice: string,
  weights: string | undefined,
  setting: string,
): Promise<FoundRecipe | null> {
  if (choice === 'none') return null;
  if (choice !== 'auto') {
    const text = await readFile(choice, 'utf8').catch((error: Error) => {
      throw new UsageError(`${setting}: cannot read recipe ${choice}: ${error.message}`);
    });
    return { recipe: parseRecipe(text, choice), source: choice, reason: `named by ${setting}` };
  }
  if (weights === undefined || isHubReference(weights)) return null;
  const sidecar = `${weights}.recipe.json`;
  if (existsSync(sidecar)) {
    const text = await readFile(sidecar, 'utf8');
    return { recipe: parseRecipe(text, sidecar), source: sidecar, reason: 'found next to model.weights' };
  }
  const embedded = await metadataRecipe(weights);
  if (embedded === null) return null;
  const source = `${weights} (safetensors metadata "${RECIPE_METADATA_KEY}")`;
  return { recipe: parseRecipe(embedded, source), source, reason: 'embedded in model.weights' };
}

/** The part of a recipe that applies to `method`: a run-config layer (`train`, `method.options`). */
export function recipeLayer(recipe: Recipe, method: string): Mapping {
  const own = recipe.methods[method] ?? {};
  const train = { ...recipe.train, ...(own.train ?? {}) };
  return {
    ...(Object.keys(train).length > 0 ? { train } : {}),
    ...(own.options ? { method: { options: own.options } } : {}),
  };
}

/** Every dotted leaf path of a mapping (arrays and scalars are leaves). */
export function leafPaths(value: Mapping, prefix = ''): string[] {
  return Object.entries(value).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return typeof child === 'object' && child !== null && !Array.isArray(child)
      ? leafPaths(child as Mapping, path)
      : [path];
  });
}

/**
 * A recipe's warm-up belongs to its epoch count: when the run sets its own `train.epochs` but leaves the warm-up to
 * the recipe, the warm-up keeps its share of the run (rounded), so a short run is not all warm-up. Returns the note
 * to print, or null when nothing changed.
 */
export function scaleRecipeWarmup(merged: Mapping, layer: Mapping, provenance: Provenance): string | null {
  const train = merged.train as Mapping | undefined;
  const recipeTrain = layer.train as Mapping | undefined;
  const [epochs, recipeEpochs, warmup] = [train?.epochs, recipeTrain?.epochs, recipeTrain?.warmupEpochs];
  if (provenance.kindOf('train.warmupEpochs') !== 'recipe' || provenance.kindOf('train.epochs') === 'recipe')
    return null;
  if (![epochs, recipeEpochs, warmup].every((v) => Number.isInteger(v) && (v as number) > 0)) return null;
  const scaled = Math.round(((warmup as number) * (epochs as number)) / (recipeEpochs as number));
  if (scaled === warmup) return null;
  (train as Mapping).warmupEpochs = scaled;
  const source = provenance.sourceOf('train.warmupEpochs');
  if (source)
    provenance.record('train.warmupEpochs', scaled, { ...source, label: `${source.label} (scaled)` });
  return (
    `train.warmupEpochs ${scaled}: the recipe warms up ${warmup} of ${recipeEpochs} epochs; ` +
    `scaled to the ${epochs} epochs of ${provenance.describe('train.epochs')}`
  );
}
