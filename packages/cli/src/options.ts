import { DEFAULT_MAX_NPZ_BYTES } from '@peftjs/backbone';
import { BACKEND_PREFERENCES, z } from '@peftjs/core';
import { DEFAULT_INPUT_LIMITS } from '@peftjs/data';
import { TRAIN_OPTIONS } from '@peftjs/train';
import { DEFAULT_METHOD } from './methods.js';

/**
 * The run config of every `peft` command: one zod schema, the only place a command-line default lives. Config
 * files, `--section.key=value` flags, `--help`, the generated docs table and did-you-mean suggestions all derive
 * from it; `train.*` is `@peftjs/train`'s own option schema and `method.options` is checked against the chosen
 * method's schema.
 */

/** `data.normalization` when a config does not say (Hub weights may replace it with their own preset). */
export const DEFAULT_NORMALIZATION = 'inception';

const MODEL_SECTION = z.strictObject({
  weights: z
    .string()
    .min(1)
    .optional()
    .describe(
      'ViT weights: .safetensors (timm or HF naming), Google .npz, or a Hub reference hf:<org>/<repo>[@rev][:file] ' +
        'or timm:<model> (downloaded once into the Hugging Face cache; its config.json sets the normalisation)',
    ),
  heads: z
    .int()
    .positive()
    .optional()
    .describe('attention heads when they cannot be inferred (width not a multiple of 64)'),
  layerNormEps: z
    .number()
    .positive()
    .optional()
    .describe('LayerNorm eps (absent: 1e-6 for timm, 1e-12 for HF weights)'),
  dropPathRate: z
    .number()
    .min(0)
    .max(0.99)
    .default(0)
    .describe('stochastic depth rate of the last block (the SHIP code uses 0.1)'),
  fingerprint: z
    .string()
    .regex(/^sha256:[0-9a-f]{64}$/)
    .optional()
    .describe(
      'refuse to run unless the loaded backbone has this fingerprint (sha256:…, as results.json and adapter files record)',
    ),
  maxNpzMb: z
    .number()
    .positive()
    .default(DEFAULT_MAX_NPZ_BYTES / 2 ** 20)
    .describe('.npz weights: most MB its arrays may declare in total, checked before inflating'),
  recipe: z
    .string()
    .min(1)
    .default('auto')
    .describe(
      "the backbone's training recipe, under the preset, file and flags: auto (<weights>.recipe.json, else the " +
        'safetensors metadata key peftjs.recipe), none, or a recipe file',
    ),
});

const METHOD_SECTION = z.strictObject({
  name: z
    .string()
    .min(1)
    .default(DEFAULT_METHOD)
    .describe('PEFT method: a built-in name, or a module path or package exporting a method definition'),
  options: z
    .record(z.string(), z.unknown())
    .default({})
    .describe("the method's own options, checked against its schema (see its table)"),
});

// Data: one block, so options added here merge easily.
const DATA_SECTION = z.strictObject({
  format: z.enum(['vtab', 'imagefolder', 'idx']).default('vtab').describe('dataset layout'),
  root: z
    .string()
    .optional()
    .describe(
      'vtab: folder holding <task>/; imagefolder: folder holding train/ val/ test/; idx: folder with IDX files',
    ),
  task: z.string().optional().describe('vtab: task folder name (e.g. dtd)'),
  numClasses: z
    .int()
    .positive()
    .optional()
    .describe('class count (absent: the known VTAB count, else the largest label + 1)'),
  normalization: z
    .enum(['inception', 'imagenet'])
    .default(DEFAULT_NORMALIZATION)
    .describe('pixel normalisation preset'),
  cacheMb: z.number().min(0).default(256).describe('decoded-image cache per split, MB'),
  trainImages: z.string().default('train-images-idx3-ubyte').describe('idx: training images file'),
  trainLabels: z.string().default('train-labels-idx1-ubyte').describe('idx: training labels file'),
  testImages: z.string().default('t10k-images-idx3-ubyte').describe('idx: test images file'),
  testLabels: z.string().default('t10k-labels-idx1-ubyte').describe('idx: test labels file'),
  // Input limits, checked before memory is allocated (docs/guides/limits-and-safety.md).
  maxImagePixels: z
    .int()
    .positive()
    .default(DEFAULT_INPUT_LIMITS.maxImagePixels)
    .describe('largest image (width × height), read from its header before decoding'),
  maxFileMb: z
    .number()
    .positive()
    .default(DEFAULT_INPUT_LIMITS.maxFileBytes / 2 ** 20)
    .describe('largest image or list file, MB (only regular files are read)'),
  maxIdxMb: z
    .number()
    .positive()
    .default(DEFAULT_INPUT_LIMITS.maxIdxBytes / 2 ** 20)
    .describe('largest IDX file, MB, after gunzip (checked from its header before inflating)'),
});

const TRAIN_SECTION = TRAIN_OPTIONS.omit({ seed: true }).extend({
  protocol: z
    .enum(['vtab', 'single', 'select', 'refit'])
    .default('vtab')
    .describe(
      'vtab: choose epochs on val200 (train800), refit on train800val200, test once (selection, ' +
        'stopAfterEpochs and restoreBest then do not apply); single: train on train+val, select on val; ' +
        "select: vtab's selection stage alone (train800, scored on val200, the test split never read); " +
        "refit: vtab's final stage alone (train800val200 for stopAfterEpochs of the epochs-long schedule, test once)",
    ),
});

/** The whole run config (strict: an unknown key anywhere is an error). */
export const RUN_CONFIG = z.strictObject({
  backend: z
    .enum(BACKEND_PREFERENCES)
    .default('auto')
    .describe('tfjs backend (auto tries tensorflow-gpu, webgpu, tensorflow, wasm, cpu)'),
  seed: z.union([z.int(), z.string()]).default(1).describe('root seed: init, shuffling, k-means, dropout'),
  out: z
    .string()
    .min(1)
    .default('runs/peft')
    .describe('run folder (manifest, log, checkpoints, adapter, report)'),
  preset: z
    .string()
    .min(1)
    .nullable()
    .default(null)
    .describe("one of the method's published presets (e.g. vtab:cifar100), under the config file and flags"),
  model: MODEL_SECTION.prefault({}).describe('the backbone'),
  method: METHOD_SECTION.prefault({}).describe('the PEFT method'),
  data: DATA_SECTION.prefault({}).describe('the dataset'),
  train: TRAIN_SECTION.prefault({}).describe('training (the options of train() in @peftjs/train)'),
});

/** A resolved run config: every section, defaults filled in, keys in schema order. */
export type RunConfig = z.output<typeof RUN_CONFIG>;

/** The config sections (objects whose keys are options). */
export const SECTIONS = ['model', 'method', 'data', 'train'] as const;
