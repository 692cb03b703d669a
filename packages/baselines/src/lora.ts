import {
  type HookContext,
  type PeftModel,
  type PeftPlugin,
  PeftError,
  type PluginHooks,
  type Tensor,
  type Tensor3D,
  tf,
  z,
  pluginFunction,
} from '@peftjs/core';
import { linear } from '@peftjs/core/ops';
import { baselineMethod, identityFields, pluginHeader } from './common.js';
import {
  attachOnce,
  checkBlocks,
  distinctList,
  dropout,
  dropoutRate,
  kaimingUniformBound,
  uniformTensor,
} from './common.js';

/**
 * Every place a LoRA pair can sit, in forward order: the q, k or v slice of the fused qkv projection, the
 * attention output projection, or the MLP's two linears.
 */
export const LORA_TARGETS = ['q', 'k', 'v', 'proj', 'fc1', 'fc2'] as const;
/** One of `LORA_TARGETS`. */
export type LoraTarget = (typeof LORA_TARGETS)[number];

/** Options of LoRA: the only place their defaults live. */
export const LORA_OPTIONS = z
  .strictObject({
    rank: z.int().positive().default(8).describe('rank r of each update'),
    alpha: z.number().finite().positive().default(8).describe('the update is scaled by alpha / r'),
    dropout: dropoutRate().default(0).describe('dropout on the input of each LoRA branch while training'),
    targets: distinctList(z.enum(LORA_TARGETS))
      .default(['q', 'v'])
      .describe('layers that get an update (q, v as the LoRA paper)'),
    blocks: distinctList(z.int().nonnegative())
      .nullable()
      .default(null)
      .describe('blocks that get updates; null: every block'),
    ...identityFields({ name: 'lora', prefix: 'lora' }),
  })
  .describe(
    'LoRA (Hu et al., 2022): a low-rank update (alpha/r)·B·A added to chosen linear layers, mergeable',
  );

interface TargetGeometry {
  /** Backbone weight the update belongs to, stored `[in, out]`. */
  readonly weight: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** First output column of the slice inside the weight (q|k|v share one `[D, 3D]` weight). */
  readonly column: number;
}

function targetGeometry(target: LoraTarget, block: number, dim: number, hidden: number): TargetGeometry {
  const b = `blocks.${block}`;
  switch (target) {
    case 'q':
    case 'k':
    case 'v':
      return {
        weight: `${b}.attn.qkv.weight`,
        inFeatures: dim,
        outFeatures: dim,
        column: 'qkv'.indexOf(target) * dim,
      };
    case 'proj':
      return { weight: `${b}.attn.proj.weight`, inFeatures: dim, outFeatures: dim, column: 0 };
    case 'fc1':
      return { weight: `${b}.mlp.fc1.weight`, inFeatures: dim, outFeatures: hidden, column: 0 };
    case 'fc2':
      return { weight: `${b}.mlp.fc2.weight`, inFeatures: hidden, outFeatures: dim, column: 0 };
  }
}

/** What `mergeLora` needs to find a LoRA plugin's tensors in a model. */
interface LoraState {
  readonly options: z.output<typeof LORA_OPTIONS>;
  readonly scale: number;
  blocks: number[];
  merged: boolean;
  /** Copies of the backbone weights taken at merge time, restored bit-exactly by `unmergeLora`. */
  readonly originals: Map<string, Tensor>;
  /** Weights this plugin's merge gave the model its own copy of (released again by `unmergeLora`). */
  readonly copied: Set<string>;
}

// Keyed by the hooks object: `{ ...lora(o), tier: 'pre' }` copies the plugin but keeps the same hooks object.
const loraStates = new WeakMap<PluginHooks, LoraState>();

const paramName = (block: number, target: LoraTarget, which: 'A' | 'B') =>
  `blocks.${block}.${target}.lora_${which}`;

/**
 * LoRA (Hu et al., 2022) on a timm ViT: W x + (alpha/r)·B A x for the selected layers, with A `[in, r]` initialised
 * as HF PEFT (kaiming-uniform, a = √5: U(±1/√in)) and B `[r, out]` zero, so training starts from the frozen model.
 *
 * - q / k / v: the `qkv` hook adds each update to its slice of the fused `[B, N, 3D]` projection.
 * - proj / fc1 / fc2: the hook of the same name wraps that linear layer and adds the update to its output, so
 *   LoRA composes with any other plugin at any site (an adapter wrapping the whole MLP runs around it).
 *
 * `mergeLora(model)` folds the updates into the backbone weights for inference; `unmergeLora(model)` restores them.
 */
export const LORA_METHOD = baselineMethod('lora', LORA_OPTIONS, createLora);

/** A LoRA plugin from options (parsed by `LORA_OPTIONS`: unknown keys and bad values are refused). */
export const lora = pluginFunction(LORA_METHOD);

function createLora(options: z.output<typeof LORA_OPTIONS>): PeftPlugin {
  const o = {
    ...options,
    blocks: options.blocks === null ? null : [...options.blocks].sort((a, b) => a - b),
  };
  const targets = new Set(o.targets);
  const qkvTargets = (['q', 'k', 'v'] as const).filter((t) => targets.has(t));
  const state: LoraState = {
    options: o,
    scale: o.alpha / o.rank,
    blocks: [],
    merged: false,
    originals: new Map(),
    copied: new Set(),
  };
  let active = new Set<number>();
  const claim = attachOnce(o.name);

  /** False when the block has no update or the updates are merged into the weights; refuses to train merged. */
  function applies(ctx: HookContext, block: number): boolean {
    if (!active.has(block)) return false;
    if (!state.merged) return true;
    if (ctx.training) {
      throw new PeftError(
        'PARAMETER_INVALID',
        `plugin "${o.name}" has its updates merged into the backbone; call unmergeLora(model) before training`,
      );
    }
    return false;
  }

  const inputDropout = <T extends Tensor>(ctx: HookContext, x: T, site: string): T =>
    ctx.training ? dropout(x, o.dropout, ctx.rng.split(`dropout:${site}`)) : x;

  /** (alpha/r)·x A B for input x (already dropped out). */
  function update(ctx: HookContext, x: Tensor, block: number, target: LoraTarget): Tensor {
    const a = ctx.param(paramName(block, target, 'A'));
    const b = ctx.param(paramName(block, target, 'B'));
    return tf.mul(linear(linear(x, a), b), state.scale);
  }

  const hooks: PluginHooks = {};
  if (qkvTargets.length > 0) {
    hooks.qkv = (ctx, input, next, block) => {
      const out = next(input);
      if (!applies(ctx, block)) return out;
      const x = inputDropout(ctx, input, `qkv:${block}`);
      const [batch, tokens] = input.shape;
      const slices = (['q', 'k', 'v'] as const).map((t) =>
        targets.has(t) ? update(ctx, x, block, t) : tf.zeros([batch, tokens, ctx.config.dim]),
      );
      return tf.add(out, tf.concat(slices, 2)) as Tensor3D;
    };
  }
  /** The wrapped linear layer's W x plus this block's (alpha/r)·B A x for `target`. */
  const withUpdate =
    (target: 'proj' | 'fc1' | 'fc2'): NonNullable<PluginHooks[typeof target]> =>
    (ctx, input, next, block) => {
      const out = next(input);
      if (!applies(ctx, block)) return out;
      return tf.add(
        out,
        update(ctx, inputDropout(ctx, input, `${target}:${block}`), block, target),
      ) as Tensor3D;
    };
  for (const target of ['proj', 'fc1', 'fc2'] as const) {
    if (targets.has(target)) hooks[target] = withUpdate(target);
  }

  const plugin: PeftPlugin = {
    ...pluginHeader('lora', o),
    setup(ctx) {
      claim();
      const { dim, depth, mlpHidden } = ctx.config;
      state.blocks = checkBlocks('lora.blocks', o.blocks, depth);
      active = new Set(state.blocks);
      for (const block of state.blocks) {
        for (const target of o.targets) {
          const g = targetGeometry(target, block, dim, mlpHidden);
          const bound = kaimingUniformBound(g.inFeatures);
          const rng = ctx.rng.split(paramName(block, target, 'A'));
          ctx.addParameter(paramName(block, target, 'A'), uniformTensor(rng, [g.inFeatures, o.rank], bound));
          ctx.addParameter(paramName(block, target, 'B'), tf.zeros([o.rank, g.outFeatures]));
        }
      }
    },
    hooks,
  };
  loraStates.set(hooks, state);
  return plugin;
}

function loraPluginsOf(model: PeftModel, caller: string): { plugin: PeftPlugin; state: LoraState }[] {
  const found = model.plugins.flatMap((plugin) => {
    const state = loraStates.get(plugin.hooks);
    return state ? [{ plugin, state }] : [];
  });
  if (found.length === 0) {
    throw new PeftError(
      'INVALID_OPTION',
      `${caller}: the model has no LoRA plugin (plugins: ${model.plugins.map((p) => p.name).join(', ') || 'none'})`,
    );
  }
  return found;
}

/**
 * Folds every LoRA plugin's update (alpha/r)·A B into the model's weights, so inference runs at the frozen model's
 * cost. The backbone itself never changes: the model gets its own copy of each merged weight
 * (`PeftModel.ownBaseTensor`), so other models on the same backbone are unaffected. The hooks skip their updates
 * while merged. `unmergeLora` restores the weights bit-exactly (and drops the copies). Returns the number of
 * weights changed.
 */
export function mergeLora(model: PeftModel): number {
  const plugins = loraPluginsOf(model, 'mergeLora');
  for (const { plugin, state } of plugins) {
    if (state.merged) {
      throw new PeftError('PARAMETER_INVALID', `mergeLora: plugin "${plugin.name}" is already merged`);
    }
  }
  const { dim, mlpHidden } = model.config;
  let changed = 0;
  for (const { plugin, state } of plugins) {
    const byWeight = new Map<string, { target: LoraTarget; block: number; g: TargetGeometry }[]>();
    for (const block of state.blocks) {
      for (const target of state.options.targets) {
        const g = targetGeometry(target, block, dim, mlpHidden);
        byWeight.set(g.weight, [...(byWeight.get(g.weight) ?? []), { target, block, g }]);
      }
    }
    for (const [name, updates] of byWeight) {
      const wasShared = model.registry.entry(name).shared;
      const variable = model.ownBaseTensor(name, plugin.name);
      if (wasShared) state.copied.add(name);
      state.originals.set(name, tf.clone(variable));
      const merged = tf.tidy(() => {
        const total = variable.shape[1] as number;
        let sum: Tensor = variable;
        for (const { target, block, g } of updates) {
          const a = model.registry.get(`${plugin.prefix}.${paramName(block, target, 'A')}`);
          const b = model.registry.get(`${plugin.prefix}.${paramName(block, target, 'B')}`);
          const delta = tf.mul(tf.matMul(a, b), state.scale);
          const placed = tf.pad(delta, [
            [0, 0],
            [g.column, total - g.column - g.outFeatures],
          ]);
          sum = tf.add(sum, placed);
        }
        return sum;
      });
      variable.assign(merged);
      merged.dispose();
      changed++;
    }
    state.merged = true;
  }
  return changed;
}

/** Restores the backbone weights saved by `mergeLora` exactly and re-enables the LoRA hooks. */
export function unmergeLora(model: PeftModel): number {
  // Reverse order: a later plugin's copy of a shared weight already holds the earlier plugins' updates.
  const plugins = loraPluginsOf(model, 'unmergeLora').reverse();
  for (const { plugin, state } of plugins) {
    if (!state.merged) {
      throw new PeftError('PARAMETER_INVALID', `unmergeLora: plugin "${plugin.name}" is not merged`);
    }
  }
  let restored = 0;
  for (const { state } of plugins) {
    for (const [name, original] of state.originals) {
      if (state.copied.has(name)) model.releaseBaseTensor(name);
      else model.registry.get(name).assign(original);
      original.dispose();
      restored++;
    }
    state.originals.clear();
    state.copied.clear();
    state.merged = false;
  }
  return restored;
}

/** Whether the model's LoRA updates are currently merged into its backbone weights. */
export function isLoraMerged(model: PeftModel): boolean {
  return loraPluginsOf(model, 'isLoraMerged').some(({ state }) => state.merged);
}

/** Options of `lora` as given: every key optional (see `LORA_OPTIONS`). */
export type LoraOptions = z.input<typeof LORA_OPTIONS>;
