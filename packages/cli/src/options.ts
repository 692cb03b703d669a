import { DEFAULT_MAX_NPZ_BYTES } from '@peftjs/backbone';
import { DEFAULT_INPUT_LIMITS } from '@peftjs/data';
import { z } from 'zod';

/**
 * Every option of a run, in one table: the config-file schema, the `--section.key=value` flags, `--help` and the
 * did-you-mean suggestions are all generated from it.
 */
export interface OptionSpec {
  /**
   * Dotted option name: `key` at the top level or `section.key` (sections `model`, `method`, `data`,
   * `train`); also the `--path=value` flag.
   */
  readonly path: string;
  /** zod schema a value must satisfy. */
  readonly schema: z.ZodType;
  /** Value used when the option is not given; without one the option stays unset. */
  readonly default?: unknown;
  /** One-line help shown by `--help`. */
  readonly description: string;
}

const backends = ['auto', 'tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'] as const;
/** The PEFT methods `method.name` accepts. */
export const METHODS = ['ship', 'vpt', 'lora', 'adapter', 'bitfit', 'ssf', 'linear', 'full'] as const;
/** One of `METHODS`. */
export type MethodName = (typeof METHODS)[number];

/** The option table (see `OptionSpec`), in `--help` order. */
export const OPTIONS: readonly OptionSpec[] = [
  {
    path: 'backend',
    schema: z.enum(backends),
    default: 'auto',
    description: 'tfjs backend (auto tries tensorflow-gpu, webgpu, tensorflow, wasm, cpu)',
  },
  {
    path: 'seed',
    schema: z.union([z.int(), z.string()]),
    default: 1,
    description: 'root seed: init, shuffling, k-means, dropout',
  },
  {
    path: 'out',
    schema: z.string(),
    default: 'runs/peft',
    description: 'run folder (manifest, log, checkpoints, adapter, report)',
  },
  {
    path: 'model.weights',
    schema: z.string(),
    description:
      'ViT weights: .safetensors (timm or HF naming), Google .npz, or a Hub reference hf:<org>/<repo>[@rev][:file] ' +
      'or timm:<model> (downloaded once into the Hugging Face cache; its config.json sets the normalisation)',
  },
  {
    path: 'model.heads',
    schema: z.int().positive(),
    description: 'attention heads when they cannot be inferred (width not a multiple of 64)',
  },
  {
    path: 'model.layerNormEps',
    schema: z.number().positive(),
    description: 'LayerNorm eps (default: 1e-6 timm, 1e-12 HF)',
  },
  {
    path: 'model.dropPathRate',
    schema: z.number().min(0).max(0.99),
    default: 0,
    description: 'stochastic depth rate of the last block (SHIP code: 0.1)',
  },
  {
    path: 'method.name',
    schema: z.enum(METHODS),
    default: 'ship',
    description: `PEFT method: ${METHODS.join(', ')}`,
  },
  {
    path: 'method.options',
    schema: z.record(z.string(), z.unknown()),
    default: {},
    description:
      'options of the method (see the method package docs), e.g. {"threshold": 0.93, "promptLength": 50} for ship',
  },
  {
    path: 'data.format',
    schema: z.enum(['vtab', 'imagefolder', 'idx']),
    default: 'vtab',
    description: 'dataset layout',
  },
  {
    path: 'data.root',
    schema: z.string(),
    description:
      'vtab: folder holding <task>/; imagefolder: folder holding train/ val/ test/; idx: folder with IDX files',
  },
  { path: 'data.task', schema: z.string(), description: 'vtab: task folder name (e.g. dtd)' },
  {
    path: 'data.numClasses',
    schema: z.int().positive(),
    description: 'class count (default: known VTAB count or largest label + 1)',
  },
  {
    path: 'data.normalization',
    schema: z.enum(['inception', 'imagenet']),
    default: 'inception',
    description: 'pixel normalisation preset',
  },
  {
    path: 'data.cacheMb',
    schema: z.number().min(0),
    default: 256,
    description: 'decoded-image cache per split, MB',
  },
  {
    path: 'data.trainImages',
    schema: z.string(),
    default: 'train-images-idx3-ubyte',
    description: 'idx: training images file',
  },
  {
    path: 'data.trainLabels',
    schema: z.string(),
    default: 'train-labels-idx1-ubyte',
    description: 'idx: training labels file',
  },
  {
    path: 'data.testImages',
    schema: z.string(),
    default: 't10k-images-idx3-ubyte',
    description: 'idx: test images file',
  },
  {
    path: 'data.testLabels',
    schema: z.string(),
    default: 't10k-labels-idx1-ubyte',
    description: 'idx: test labels file',
  },
  // Input limits, checked before memory is allocated (docs/guides/limits-and-safety.md).
  {
    path: 'model.maxNpzMb',
    schema: z.number().positive(),
    default: DEFAULT_MAX_NPZ_BYTES / 2 ** 20,
    description: '.npz weights: most MB its arrays may declare in total, checked before inflating',
  },
  {
    path: 'data.maxImagePixels',
    schema: z.int().positive(),
    default: DEFAULT_INPUT_LIMITS.maxImagePixels,
    description: 'largest image (width × height), read from its header before decoding',
  },
  {
    path: 'data.maxFileMb',
    schema: z.number().positive(),
    default: DEFAULT_INPUT_LIMITS.maxFileBytes / 2 ** 20,
    description: 'largest image or list file, MB (only regular files are read)',
  },
  {
    path: 'data.maxIdxMb',
    schema: z.number().positive(),
    default: DEFAULT_INPUT_LIMITS.maxIdxBytes / 2 ** 20,
    description: 'largest IDX file, MB, after gunzip (checked from its header before inflating)',
  },
  {
    path: 'train.protocol',
    schema: z.enum(['vtab', 'single']),
    default: 'vtab',
    description:
      'vtab: choose epochs on val200 (train800), refit on train800val200, test once; single: train on train+val, select on val',
  },
  {
    path: 'train.epochs',
    schema: z.int().positive(),
    default: 100,
    description: 'epochs (cosine t_initial)',
  },
  { path: 'train.batchSize', schema: z.int().positive(), default: 64, description: 'batch size' },
  {
    path: 'train.microBatch',
    schema: z.int().positive(),
    description: 'examples per forward/backward (gradient accumulation)',
  },
  { path: 'train.optimizer', schema: z.enum(['adamw', 'sgd']), default: 'adamw', description: 'optimizer' },
  { path: 'train.lr', schema: z.number().positive(), default: 1e-3, description: 'peak learning rate' },
  {
    path: 'train.weightDecay',
    schema: z.number().min(0),
    default: 1e-3,
    description: 'decoupled weight decay (not on biases/norms)',
  },
  { path: 'train.momentum', schema: z.number().min(0).max(1), default: 0.9, description: 'SGD momentum' },
  {
    path: 'train.schedule',
    schema: z.enum(['cosine-epoch', 'cosine-step', 'constant']),
    default: 'cosine-epoch',
    description: 'learning-rate schedule (timm cosine stepped per epoch)',
  },
  { path: 'train.warmupEpochs', schema: z.int().min(0), default: 10, description: 'warm-up epochs' },
  {
    path: 'train.warmupLrInit',
    schema: z.number().min(0),
    default: 1e-6,
    description: 'learning rate at the start of warm-up',
  },
  { path: 'train.lrMin', schema: z.number().min(0), default: 1e-5, description: 'cosine floor' },
  {
    path: 'train.evalEvery',
    schema: z.int().positive(),
    default: 10,
    description: 'evaluate every N epochs (and the last)',
  },
  {
    path: 'train.checkpointEvery',
    schema: z.int().positive(),
    default: 10,
    description: 'checkpoint every N epochs (and at the end)',
  },
  {
    path: 'train.selection',
    schema: z.enum(['val', 'max-test-over-epochs']),
    default: 'val',
    description:
      "model selection; 'max-test-over-epochs' reproduces the official SHIP code (optimistic, labelled in reports)",
  },
  {
    path: 'train.resume',
    schema: z.boolean(),
    default: false,
    description: 'continue from the run folder checkpoint (single protocol)',
  },
];

const SECTIONS = ['model', 'method', 'data', 'train'] as const;

/** A resolved, validated run config: `OPTIONS` as nested sections, defaults filled in. */
export interface RunConfig {
  /** tfjs backend preference (default `auto`). */
  backend: (typeof backends)[number];
  /** Root seed of initialisation, shuffling, k-means and dropout (default 1). */
  seed: number | string;
  /** Run folder for manifest, log, checkpoints, adapter and report (default `runs/peft`). */
  out: string;
  /** The backbone. */
  model: {
    /**
     * ViT weights: `.safetensors` (timm or HF naming), Google `.npz`, or a Hub reference
     * (`hf:<org>/<repo>[@revision][:file]`, `timm:<model-name>`) resolved into the Hugging Face cache.
     */
    weights?: string;
    /** Attention heads, when they cannot be inferred (width not a multiple of 64). */
    heads?: number;
    /** LayerNorm epsilon (default: 1e-6 for timm weights, 1e-12 for HF). */
    layerNormEps?: number;
    /** Stochastic-depth rate of the last block (default 0; the SHIP code uses 0.1). */
    dropPathRate: number;
    /** `.npz` weights: most MB (MiB) their arrays may declare in total (default 2048). */
    maxNpzMb: number;
  };
  /** The PEFT method. */
  method: {
    /** The method (default `ship`). */
    name: MethodName;
    /** The method's own options (see its package), e.g. `{ "threshold": 0.93 }` for ship. Default `{}`. */
    options: Record<string, unknown>;
  };
  /** The dataset. */
  data: {
    /** Dataset layout (default `vtab`). */
    format: 'vtab' | 'imagefolder' | 'idx';
    /**
     * vtab: folder holding `<task>/`; imagefolder: folder holding `train/`, `val/`, `test/`; idx: folder with
     * the IDX files.
     */
    root?: string;
    /** vtab: task folder name (e.g. `dtd`). */
    task?: string;
    /** Class count (default: the known VTAB count, else the largest label + 1). */
    numClasses?: number;
    /** Pixel normalisation preset (default `inception`). */
    normalization: 'inception' | 'imagenet';
    /** Decoded-image cache per split, in MB (default 256). */
    cacheMb: number;
    /** idx: training images file name (default `train-images-idx3-ubyte`). */
    trainImages: string;
    /** idx: training labels file name (default `train-labels-idx1-ubyte`). */
    trainLabels: string;
    /** idx: test images file name (default `t10k-images-idx3-ubyte`). */
    testImages: string;
    /** idx: test labels file name (default `t10k-labels-idx1-ubyte`). */
    testLabels: string;
    /** Largest image in pixels, checked from its header before decoding (default 40,000,000). */
    maxImagePixels: number;
    /** Largest image or list file, in MB (MiB) (default 256). */
    maxFileMb: number;
    /** Largest IDX file after gunzip, in MB (MiB) (default 1024). */
    maxIdxMb: number;
  };
  /** Training. */
  train: {
    /**
     * `vtab`: choose epochs on val200 (trained on train800), refit on train800val200, test once; `single`:
     * one run selected on validation (default `vtab`).
     */
    protocol: 'vtab' | 'single';
    /** Epochs, the cosine's t_initial (default 100). */
    epochs: number;
    /** Batch size (default 64). */
    batchSize: number;
    /** Examples per forward/backward pass (gradient accumulation); default the whole batch. */
    microBatch?: number;
    /** Optimizer (default `adamw`). */
    optimizer: 'adamw' | 'sgd';
    /** Peak learning rate (default 1e-3). */
    lr: number;
    /** Weight decay, not applied to biases and norms (default 1e-3). */
    weightDecay: number;
    /** SGD momentum (default 0.9). */
    momentum: number;
    /** Learning-rate schedule (default `cosine-epoch`). */
    schedule: 'cosine-epoch' | 'cosine-step' | 'constant';
    /** Warm-up epochs (default 10). */
    warmupEpochs: number;
    /** Learning rate at the start of the warm-up (default 1e-6). */
    warmupLrInit: number;
    /** Cosine floor (default 1e-5). */
    lrMin: number;
    /** Evaluate every N epochs and at the last (default 10). */
    evalEvery: number;
    /** Checkpoint every N epochs and at the end (default 10). */
    checkpointEvery: number;
    /**
     * Model selection (default `val`); `max-test-over-epochs` reproduces the official SHIP code (optimistic,
     * labelled in reports).
     */
    selection: 'val' | 'max-test-over-epochs';
    /** Continue from the run folder's checkpoint (single protocol; default false). */
    resume: boolean;
  };
}

/** The nested zod schema built from the table (strict: unknown keys are errors). */
export function runConfigSchema(): z.ZodType<RunConfig> {
  const top: Record<string, z.ZodType> = {};
  const sections: Record<string, Record<string, z.ZodType>> = Object.fromEntries(
    SECTIONS.map((s) => [s, {}]),
  );
  for (const option of OPTIONS) {
    const withDefault =
      option.default !== undefined
        ? option.schema.default(option.default as never)
        : option.schema.optional();
    const [head, key] = option.path.split('.') as [string, string | undefined];
    if (key === undefined) top[head] = withDefault;
    else (sections[head] as Record<string, z.ZodType>)[key] = withDefault;
  }
  for (const section of SECTIONS)
    top[section] = z.strictObject(sections[section] as Record<string, z.ZodType>).prefault({});
  return z.strictObject(top) as unknown as z.ZodType<RunConfig>;
}

export function optionPaths(): string[] {
  return OPTIONS.map((o) => o.path);
}
