import {
  PLUGIN_TIERS,
  PeftError,
  type PeftPlugin,
  type PluginMethodDefinition,
  type Rng,
  type Tensor,
  definePluginMethod,
  pluginIdentity,
  tf,
  z,
} from '@peftjs/core';

/** Version of every plugin in this package. */
export const BASELINES_VERSION = '0.1.0';

/**
 * The identity options every baseline has, so two instances of one method can share a model: `name` and `prefix`
 * (defaults: the method's own), and the hook `tier`.
 */
export function identityFields(defaults: { name: string; prefix: string }) {
  return {
    name: z.string().min(1).default(defaults.name).describe('plugin name, unique within a model'),
    prefix: z
      .string()
      .min(1)
      .default(defaults.prefix)
      .describe("namespace of the plugin's tensors (<prefix>.<name>), unique within a model"),
    tier: z
      .enum(PLUGIN_TIERS)
      .nullable()
      .default(null)
      .describe('hook tier (pre, normal or post; see the ordering rule in @peftjs/core); null: normal'),
  };
}

/** A dropout rate in [0, 1): a rate of 1 would drop everything and divide by zero. */
export const dropoutRate = () => z.number().min(0).lt(1);

/** A non-empty list of distinct values (the message names the first repeated one). */
export function distinctList<T extends z.ZodType>(item: T) {
  return z
    .array(item)
    .min(1)
    .superRefine((values, ctx) => {
      const seen = new Set<unknown>();
      for (const value of values) {
        if (seen.has(value))
          ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} appears twice` });
        seen.add(value);
      }
    });
}

/** The parsed identity options, as every baseline's options contain them. */
interface Identity {
  readonly name: string;
  readonly prefix: string;
  readonly tier: (typeof PLUGIN_TIERS)[number] | null;
}

/** The fields every baseline plugin object starts with: identity, type, versions and its options recorded whole. */
export function pluginHeader<O extends Identity>(type: string, options: O) {
  const { name, prefix, tier } = options;
  return pluginIdentity({ type, version: BASELINES_VERSION, name, prefix, tier }, options);
}

/**
 * A baseline whose only options are its identity (linear probe, BitFit, full fine-tuning): its method `name`, its
 * plugin `type` (also the default plugin name), default tensor `prefix`, and what the plugin does besides its
 * identity (`setup`, `hooks`).
 */
export function identityOnlyMethod(
  spec: { name: string; type: string; prefix: string; description: string },
  body: (name: string) => Pick<PeftPlugin, 'setup' | 'hooks'>,
) {
  const options = z
    .strictObject(identityFields({ name: spec.type, prefix: spec.prefix }))
    .describe(spec.description);
  return baselineMethod(
    spec.name,
    options,
    (o) => ({ ...pluginHeader(spec.type, o), ...body(o.name) }),
    spec.type,
  );
}

/**
 * A baseline as one definition that is both its method (`name`) and its plugin (`type`, default the name); the
 * description is the options schema's.
 */
export function baselineMethod<S extends z.ZodObject>(
  name: string,
  options: S,
  create: (options: z.output<S>) => PeftPlugin,
  type = name,
): PluginMethodDefinition<S> {
  const description = options.description ?? '';
  return definePluginMethod({ type, name, version: BASELINES_VERSION, description, options, create });
}

/** Resolves a block selection against the model depth (null = every block), sorted. */
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
  return [...blocks].sort((a, b) => a - b);
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
