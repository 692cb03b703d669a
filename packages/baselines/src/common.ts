import {
  type JsonObject,
  PLUGIN_TIERS,
  PeftError,
  type PluginTier,
  type Rng,
  type Tensor,
  invalidOption,
  tf,
} from '@peftjs/core';

/** Version of every plugin in this package. */
export const BASELINES_VERSION = '0.1.0';

/** Options every baseline accepts, so two instances of one method can share a model. */
export interface PluginIdentityOptions {
  /** Plugin name, unique within a model (default: the method's name). */
  name?: string;
  /** Namespace of the plugin's tensors, unique within a model (default: the method's name). */
  prefix?: string;
  /** Hook tier (`pre` | `normal` | `post`); see the ordering rule in `@peftjs/core`. Default `normal`. */
  tier?: PluginTier;
}

/** Validated `PluginIdentityOptions` with defaults applied. */
export interface ResolvedIdentity {
  /** Plugin name (the method's name unless overridden). */
  name: string;
  /** Tensor namespace (the method's name unless overridden). */
  prefix: string;
  /** Hook tier, present only when it was set. */
  tier?: PluginTier;
}

/** Validates `name`, `prefix` and `tier`; `method` names the factory in messages (e.g. `lora`). */
export function resolveIdentity(
  method: string,
  options: PluginIdentityOptions,
  defaults: { name: string; prefix: string },
): ResolvedIdentity {
  const name = options.name ?? defaults.name;
  const prefix = options.prefix ?? defaults.prefix;
  if (typeof name !== 'string' || name.length === 0)
    invalidOption(`${method}.name`, name, 'a non-empty string');
  if (typeof prefix !== 'string' || prefix.length === 0) {
    invalidOption(`${method}.prefix`, prefix, 'a non-empty string');
  }
  if (options.tier !== undefined && !PLUGIN_TIERS.includes(options.tier)) {
    invalidOption(`${method}.tier`, options.tier, `one of ${PLUGIN_TIERS.join(', ')}`);
  }
  return { name, prefix, ...(options.tier !== undefined ? { tier: options.tier } : {}) };
}

/** The identity part of a plugin's JSON options (tier only when set). */
export function identityJson(id: ResolvedIdentity): JsonObject {
  return { name: id.name, prefix: id.prefix, ...(id.tier !== undefined ? { tier: id.tier } : {}) };
}

/** Options objects must be plain objects; say which factory got something else. */
export function requireOptionsObject(method: string, options: unknown): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    invalidOption(method, options, 'an options object');
  }
}

export function requireBoolean(option: string, value: unknown): boolean {
  if (typeof value !== 'boolean') invalidOption(option, value, 'a boolean');
  return value;
}

export function requireOneOf<T extends string>(option: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    invalidOption(option, value, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
  }
  return value as T;
}

/** A dropout rate in [0, 1): a rate of 1 would drop everything and divide by zero. */
export function requireDropout(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value >= 1) {
    invalidOption(option, value, 'a number in [0, 1)');
  }
  return value;
}

/** A non-empty list of distinct allowed names, in the order given. */
export function requireSubset<T extends string>(option: string, value: unknown, allowed: readonly T[]): T[] {
  if (!Array.isArray(value) || value.length === 0) {
    invalidOption(option, value, `a non-empty array of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
  }
  const seen = new Set<T>();
  for (const item of value) {
    const v = requireOneOf(option, item, allowed);
    if (seen.has(v)) invalidOption(option, value, `distinct entries (${JSON.stringify(v)} appears twice)`);
    seen.add(v);
  }
  return [...seen];
}

/** A non-empty list of distinct block indices, sorted; the depth is checked in `setup` (see `checkBlocks`). */
export function requireBlockList(option: string, value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0) {
    invalidOption(option, value, 'a non-empty array of block indices (it would select no block)');
  }
  const blocks = value.map((b) => {
    if (typeof b !== 'number' || !Number.isInteger(b) || b < 0) {
      invalidOption(option, value, `non-negative integer block indices; ${JSON.stringify(b)} is not one`);
    }
    return b;
  });
  if (new Set(blocks).size !== blocks.length) invalidOption(option, value, 'distinct block indices');
  return [...blocks].sort((a, b) => a - b);
}

/** Resolves a block selection against the model depth (null = every block). */
export function checkBlocks(option: string, blocks: readonly number[] | null, depth: number): number[] {
  if (blocks === null) return Array.from({ length: depth }, (_, i) => i);
  const outside = blocks.filter((b) => b >= depth);
  if (outside.length > 0) {
    throw new PeftError(
      'INVALID_OPTION',
      `option "${option}" selects block${outside.length > 1 ? 's' : ''} ${outside.join(', ')}, but the model has ` +
        `${depth} blocks (0–${depth - 1})`,
    );
  }
  return [...blocks];
}

/**
 * Plugins that keep references to one model's backbone tensors can serve one model only: a second `setup` would
 * silently point the first model's hooks at the second backbone.
 */
export function attachOnce(name: string): () => void {
  let attached = false;
  return () => {
    if (attached) {
      throw new PeftError(
        'PLUGIN_INVALID',
        `plugin "${name}" is already attached to a model; create a new one for each model`,
      );
    }
    attached = true;
  };
}

/** Inverted dropout: zeroes each element with probability `rate` and scales the rest by 1/(1 − rate). */
export function dropout<T extends Tensor>(x: T, rate: number, rng: Rng): T {
  if (rate === 0) return x;
  return tf.tidy(() => {
    const keep = 1 - rate;
    // floor(u + keep) is 1 with probability keep.
    const mask = tf.floor(tf.add(tf.randomUniform(x.shape, 0, 1, 'float32', rng.tfSeed()), keep));
    return tf.mul(x, tf.div(mask, keep));
  }) as T;
}

export function uniformTensor(rng: Rng, shape: number[], bound: number): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(rng.fillUniform(new Float32Array(size), -bound, bound), shape);
}

/** Normal(0, std) truncated at ±2·std. */
export function truncatedNormalTensor(rng: Rng, shape: number[], std: number): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(rng.fillTruncatedNormal(new Float32Array(size), std, -2 * std, 2 * std), shape);
}

/** PyTorch's `nn.Linear` / HF PEFT `lora_A` default, kaiming-uniform with a = √5: U(±1/√fan_in). */
export function kaimingUniformBound(fanIn: number): number {
  return 1 / Math.sqrt(fanIn);
}
