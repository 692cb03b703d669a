import { PeftError } from './errors.js';

/**
 * The geometry of a Vision Transformer as hooks see it. Plain data: JSON-serialisable, stored in adapter files.
 */
export interface VitConfig {
  /** Square image side or [height, width] in pixels. */
  readonly imageSize: readonly [number, number];
  /** Side of the square patches in pixels; must divide both image sides. */
  readonly patchSize: number;
  /** Input channels `C` (3 for RGB). */
  readonly channels: number;
  /** Embedding width `D` of every token. */
  readonly dim: number;
  /** Number of transformer blocks. */
  readonly depth: number;
  /** Attention heads `H`; must divide `dim`. */
  readonly heads: number;
  /** Hidden width of each block's MLP (usually `4 · dim`). */
  readonly mlpHidden: number;
  /** Number of classes of the classification head (logits are `[B, numClasses]`). */
  readonly numClasses: number;
  /** LayerNorm epsilon (timm: 1e-6; HF transformers: 1e-12). */
  readonly layerNormEps: number;
  /** Whether the fused qkv projection has a bias. */
  readonly qkvBias: boolean;
  /** Stochastic depth: the rate grows linearly from 0 at block 0 to this value at the last block. */
  readonly dropPathRate: number;
}

/** Quantities derived from a config that every hook needs. */
export interface VitGeometry {
  /** Patch rows: `floor(imageHeight / patchSize)`. */
  readonly gridHeight: number;
  /** Patch columns: `floor(imageWidth / patchSize)`. */
  readonly gridWidth: number;
  /** `gridHeight · gridWidth`. */
  readonly numPatches: number;
  /** CLS + patches: the tokens that belong to the image (prompts come after them). */
  readonly numImageTokens: number;
  /** Per-head width `dh = dim / heads`. */
  readonly headDim: number;
}

/**
 * Derives the patch grid, token counts and head width from a config (no validation; see `validateVitConfig`).
 */
export function vitGeometry(config: VitConfig): VitGeometry {
  const [h, w] = config.imageSize;
  const gridHeight = Math.floor(h / config.patchSize);
  const gridWidth = Math.floor(w / config.patchSize);
  return {
    gridHeight,
    gridWidth,
    numPatches: gridHeight * gridWidth,
    numImageTokens: 1 + gridHeight * gridWidth,
    headDim: config.dim / config.heads,
  };
}

/** Checks every field of a config, naming the first one at fault. */
export function validateVitConfig(config: VitConfig): VitConfig {
  const fail = (field: string, expected: string, value: unknown) => {
    throw new PeftError(
      'INVALID_CONFIG',
      `ViT config field "${field}" must be ${expected}; got ${JSON.stringify(value)}`,
    );
  };
  const positiveInt = (field: keyof VitConfig) => {
    const value = config[field];
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0)
      fail(field, 'a positive integer', value);
  };
  for (const field of [
    'patchSize',
    'channels',
    'dim',
    'depth',
    'heads',
    'mlpHidden',
    'numClasses',
  ] as const) {
    positiveInt(field);
  }
  const size = config.imageSize;
  if (!Array.isArray(size) || size.length !== 2 || !size.every((v) => Number.isInteger(v) && v > 0)) {
    fail('imageSize', '[height, width] of positive integers', size);
  }
  if (size[0] % config.patchSize !== 0 || size[1] % config.patchSize !== 0) {
    fail('imageSize', `divisible by patchSize ${config.patchSize}`, size);
  }
  if (config.dim % config.heads !== 0) fail('heads', `a divisor of dim ${config.dim}`, config.heads);
  if (!(config.layerNormEps > 0 && config.layerNormEps < 1))
    fail('layerNormEps', 'in (0, 1)', config.layerNormEps);
  if (!(config.dropPathRate >= 0 && config.dropPathRate < 1))
    fail('dropPathRate', 'in [0, 1)', config.dropPathRate);
  if (typeof config.qkvBias !== 'boolean') fail('qkvBias', 'a boolean', config.qkvBias);
  return config;
}

/** Stochastic-depth rate of block `index`: linear from 0 to `dropPathRate`, as timm's `torch.linspace`. */
export function dropPathRateAt(config: VitConfig, index: number): number {
  return config.depth <= 1 ? 0 : (config.dropPathRate * index) / (config.depth - 1);
}
