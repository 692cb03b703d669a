import { PeftError } from '@peftjs/core';

/** The model config file read next to the weights. */
export const CONFIG_FILE = 'config.json';

/**
 * What a repository's `config.json` says about its model: timm's `pretrained_cfg` (architecture, input size,
 * mean/std, classes, interpolation, crop) or, for HF transformers repos, the model config (heads, patch and image
 * size, LayerNorm eps, labels). Fields the file does not give are absent.
 */
export interface PretrainedConfig {
  /** Which library wrote the file. */
  readonly library: 'timm' | 'transformers';
  /** timm architecture (`vit_base_patch16_224`) or the transformers class (`ViTForImageClassification`). */
  readonly architecture?: string;
  /** timm's pretrained tag (`augreg2_in21k_ft_in1k`). */
  readonly tag?: string;
  /** Input size as `[channels, height, width]`. */
  readonly inputSize?: readonly [number, number, number];
  /** Per-channel mean the model was trained with (pixels in [0, 1]). */
  readonly mean?: readonly number[];
  /** Per-channel standard deviation the model was trained with. */
  readonly std?: readonly number[];
  /** Classes of the checkpoint's head (0: no head). */
  readonly numClasses?: number;
  /** Attention heads, where the file states them (`model_args.num_heads`, `num_attention_heads`). */
  readonly heads?: number;
  /** Patch size, where the file states it. */
  readonly patchSize?: number;
  /** LayerNorm epsilon, where the file states it (transformers). */
  readonly layerNormEps?: number;
  /** Resize interpolation of the eval transform (`bicubic`). */
  readonly interpolation?: string;
  /** Centre-crop fraction of the eval transform. */
  readonly cropPct?: number;
}

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads typed fields, each error naming the source and the field. */
class Fields {
  constructor(
    private readonly source: string,
    private readonly record: Json,
    private readonly prefix = '',
  ) {}

  private fail(key: string, expected: string): never {
    throw new PeftError(
      'INVALID_CONFIG',
      `${this.source}: "${this.prefix}${key}" must be ${expected}; got ${JSON.stringify(this.record[key])}`,
    );
  }

  has(key: string): boolean {
    return this.record[key] !== undefined && this.record[key] !== null;
  }

  int(key: string, min: number): number | undefined {
    if (!this.has(key)) return undefined;
    const value = this.record[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min)
      this.fail(key, `an integer ≥ ${min}`);
    return value;
  }

  positive(key: string): number | undefined {
    if (!this.has(key)) return undefined;
    const value = this.record[key];
    if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value))
      this.fail(key, 'a positive number');
    return value;
  }

  string(key: string): string | undefined {
    if (!this.has(key)) return undefined;
    const value = this.record[key];
    if (typeof value !== 'string') this.fail(key, 'a string');
    return value;
  }

  numbers(
    key: string,
    lengths: readonly number[],
    kind: 'any' | 'positive' | 'size' = 'any',
  ): number[] | undefined {
    if (!this.has(key)) return undefined;
    const value = this.record[key];
    const valid = (v: unknown) =>
      typeof v === 'number' &&
      Number.isFinite(v) &&
      (kind === 'any' || v > 0) &&
      (kind !== 'size' || Number.isInteger(v));
    const ok = Array.isArray(value) && lengths.includes(value.length) && value.every(valid);
    const what = kind === 'size' ? 'positive integers' : kind === 'positive' ? 'positive numbers' : 'numbers';
    if (!ok) this.fail(key, `${lengths.join(' or ')} ${what}`);
    return value as number[];
  }

  child(key: string): Fields | undefined {
    const value = this.record[key];
    if (value === undefined || value === null) return undefined;
    if (!isRecord(value)) this.fail(key, 'an object');
    return new Fields(this.source, value, `${this.prefix}${key}.`);
  }
}

function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function timmConfig(root: Fields, cfg: Fields): PretrainedConfig {
  const size = cfg.numbers('input_size', [3], 'size');
  const args = root.child('model_args');
  return defined({
    library: 'timm' as const,
    architecture: root.string('architecture'),
    tag: cfg.string('tag'),
    inputSize: size as [number, number, number] | undefined,
    mean: cfg.numbers('mean', [1, 3]),
    std: cfg.numbers('std', [1, 3], 'positive'),
    numClasses: cfg.int('num_classes', 0) ?? root.int('num_classes', 0),
    heads: args?.int('num_heads', 1),
    patchSize: args?.int('patch_size', 1),
    interpolation: cfg.string('interpolation'),
    cropPct: cfg.positive('crop_pct'),
  });
}

function transformersConfig(root: Fields, record: Json): PretrainedConfig {
  const architectures = record.architectures;
  const image = root.int('image_size', 1);
  const channels = root.int('num_channels', 1) ?? 3;
  const labels = isRecord(record.id2label) ? Object.keys(record.id2label).length : undefined;
  return defined({
    library: 'transformers' as const,
    architecture:
      Array.isArray(architectures) && typeof architectures[0] === 'string' ? architectures[0] : undefined,
    inputSize: image !== undefined ? ([channels, image, image] as [number, number, number]) : undefined,
    numClasses: labels,
    heads: root.int('num_attention_heads', 1),
    patchSize: root.int('patch_size', 1),
    layerNormEps: root.positive('layer_norm_eps'),
  });
}

/**
 * Parses a repository's `config.json` (text) into a `PretrainedConfig`: timm's when it has `pretrained_cfg`,
 * transformers' when it has `model_type` or `architectures`; `null` for a config of some other library. Malformed
 * JSON or a field of the wrong type is an `INVALID_CONFIG` error naming `source` and the field.
 */
export function parsePretrainedConfig(text: string, source: string): PretrainedConfig | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new PeftError('INVALID_CONFIG', `${source}: not valid JSON (${(error as Error).message})`);
  }
  if (!isRecord(json)) throw new PeftError('INVALID_CONFIG', `${source}: expected a JSON object`);
  const root = new Fields(source, json);
  const cfg = root.child('pretrained_cfg');
  if (cfg) return timmConfig(root, cfg);
  if (root.has('model_type') || root.has('architectures')) return transformersConfig(root, json);
  if (root.has('architecture')) return timmConfig(root, new Fields(source, {}, 'pretrained_cfg.'));
  return null;
}
