import type { HookDriver, NamedLoss } from './backbone-api.js';
import { PeftError } from './errors.js';
import {
  EXCLUSIVE_SITES,
  HOOK_NAMES,
  HOOK_SPEC_VERSION,
  PLUGIN_TIERS,
  type AttentionArgs,
  type AttentionResult,
  type ForwardInfo,
  type HookContext,
  type HookName,
  type PeftPlugin,
  type PluginHooks,
} from './plugin.js';
import type { Rng } from './random.js';
import type { ParameterRegistry } from './registry.js';
import { tf } from './tf.js';
import type { Scalar, Tensor2D, Tensor3D, Variable } from './tf.js';
import type { TokenLayout, TokenStream } from './tokens.js';

const PREFIX_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$/;
const RESERVED_PREFIXES = new Set(['cls_token', 'pos_embed', 'patch_embed', 'blocks', 'norm', 'head']);

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Checks one plugin object, naming the plugin and the field at fault. */
export function validatePlugin(plugin: PeftPlugin, index: number): void {
  const where = `plugin #${index}${typeof plugin?.name === 'string' ? ` "${plugin.name}"` : ''}`;
  const fail = (what: string): never => {
    throw new PeftError('PLUGIN_INVALID', `${where}: ${what}`);
  };
  if (typeof plugin !== 'object' || plugin === null) fail('is not an object');
  if (typeof plugin.name !== 'string' || plugin.name.length === 0) fail('"name" must be a non-empty string');
  if (typeof plugin.version !== 'string' || plugin.version.length === 0) fail('"version" must be a string');
  if (plugin.specVersion !== HOOK_SPEC_VERSION) {
    fail(
      `targets hook API version ${String(plugin.specVersion)}; this PEFT.js implements version ${HOOK_SPEC_VERSION}`,
    );
  }
  if (typeof plugin.prefix !== 'string' || !PREFIX_PATTERN.test(plugin.prefix)) {
    fail(`"prefix" must be a dotted identifier; got ${JSON.stringify(plugin.prefix)}`);
  }
  if (RESERVED_PREFIXES.has(plugin.prefix.split('.')[0] ?? '')) {
    fail(`"prefix" ${JSON.stringify(plugin.prefix)} collides with backbone parameter names`);
  }
  if (plugin.tier !== undefined && !PLUGIN_TIERS.includes(plugin.tier)) {
    fail(`"tier" must be one of ${PLUGIN_TIERS.join(', ')}; got ${JSON.stringify(plugin.tier)}`);
  }
  if (typeof plugin.hooks !== 'object' || plugin.hooks === null) fail('"hooks" must be an object');
  for (const [key, value] of Object.entries(plugin.hooks)) {
    if (!(HOOK_NAMES as readonly string[]).includes(key)) {
      fail(`unknown hook "${key}" (hooks are: ${HOOK_NAMES.join(', ')})`);
    }
    if (value !== undefined && typeof value !== 'function') fail(`hook "${key}" must be a function`);
  }
  for (const site of plugin.composes ?? []) {
    if (!EXCLUSIVE_SITES.includes(site)) fail(`"composes" lists "${site}", which is not an exclusive site`);
  }
}

/**
 * Resolves the run order once: tiers (`pre`, `normal`, `post`), then the order the plugins were listed.
 * Rejects duplicate names or prefixes and conflicting overrides of an exclusive site.
 */
export function resolvePluginOrder(plugins: readonly PeftPlugin[]): PeftPlugin[] {
  plugins.forEach((p, i) => {
    validatePlugin(p, i);
  });
  const seenNames = new Map<string, number>();
  const seenPrefixes = new Map<string, string>();
  plugins.forEach((p, i) => {
    if (seenNames.has(p.name)) {
      throw new PeftError(
        'PLUGIN_CONFLICT',
        `two plugins are named "${p.name}" (#${seenNames.get(p.name)} and #${i})`,
      );
    }
    seenNames.set(p.name, i);
    for (const [prefix, owner] of seenPrefixes) {
      if (prefix === p.prefix || prefix.startsWith(`${p.prefix}.`) || p.prefix.startsWith(`${prefix}.`)) {
        throw new PeftError(
          'PLUGIN_CONFLICT',
          `plugins "${owner}" and "${p.name}" use overlapping parameter prefixes "${prefix}" and "${p.prefix}"`,
        );
      }
    }
    seenPrefixes.set(p.prefix, p.name);
  });
  const ordered = PLUGIN_TIERS.flatMap((tier) => plugins.filter((p) => (p.tier ?? 'normal') === tier));
  for (const site of EXCLUSIVE_SITES) {
    const owners = ordered.filter((p) => typeof p.hooks[site] === 'function');
    const overriding = owners.filter((p) => !(p.composes ?? []).includes(site));
    if (overriding.length > 1) {
      throw new PeftError(
        'PLUGIN_CONFLICT',
        `plugins "${overriding[0]?.name}" and "${overriding[1]?.name}" both override "${site}"; ` +
          `only one may, unless the other declares composes: ["${site}"]`,
      );
    }
    const [owner] = overriding;
    if (owner && owners[0] !== owner) {
      throw new PeftError(
        'PLUGIN_CONFLICT',
        `plugin "${owner.name}" overrides "${site}" without calling the next implementation, so it must run ` +
          `before "${owners[0]?.name}" which composes there; give "${owner.name}" tier "pre" or list it first`,
      );
    }
  }
  return ordered;
}

/** The wrapping sites whose computation maps each token `[B, N, ·]` → `[B, N, width]`. */
type TokenMapSite = 'patchEmbed' | 'qkv' | 'proj' | 'mlp' | 'fc1' | 'fc2';

interface DriverPlugin {
  readonly plugin: PeftPlugin;
  readonly ctx: HookContext;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A wrapped site must hand back the shape the backbone expects; say which plugin broke that. */
function expectShape(result: Tensor3D, expected: readonly number[], what: string): Tensor3D {
  if (!sameShape(result.shape, expected)) {
    throw new PeftError(
      'SHAPE_MISMATCH',
      `${what} must be [${expected}]; the hook returned [${result.shape}]`,
    );
  }
  return result;
}

/** Runs a plugin hook, turning any failure into one error naming the plugin and the hook. */
function callHook<T>(plugin: PeftPlugin, hook: HookName, block: number | undefined, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof PeftError && error.code === 'HOOK_FAILED') throw error;
    const site = block === undefined ? hook : `${hook}(${block})`;
    throw new PeftError(
      'HOOK_FAILED',
      `plugin "${plugin.name}" failed in hook ${site}: ${describeError(error)}`,
      {
        cause: error,
      },
    );
  }
}

/**
 * Creates the driver for one forward call: it threads the stream through every plugin's hooks in resolved order.
 * With no plugins it simply runs the backbone's own computation.
 */
export function createHookDriver(
  plugins: readonly PeftPlugin[],
  registry: ParameterRegistry,
  info: ForwardInfo,
  rng: Rng,
): HookDriver {
  const losses: NamedLoss[] = [];
  const active: DriverPlugin[] = plugins.map((plugin) => {
    const scratch = new Map<string, unknown>();
    const ctx: HookContext = {
      ...info,
      plugin: plugin.name,
      rng: rng.split(`plugin:${plugin.name}`),
      scratch,
      param(name: string): Variable {
        const full = `${plugin.prefix}.${name}`;
        if (!registry.has(full)) {
          throw new PeftError('PARAMETER_INVALID', `plugin "${plugin.name}" has no parameter "${full}"`);
        }
        return registry.get(full);
      },
      addLoss(name: string, value: Scalar, weight = 1): void {
        if (value.rank !== 0) {
          throw new PeftError('SHAPE_MISMATCH', `loss "${name}" of plugin "${plugin.name}" must be a scalar`);
        }
        losses.push({ name, plugin: plugin.name, value, weight });
      },
    };
    return { plugin, ctx };
  });
  const withHook = (hook: HookName) => active.filter((a) => typeof a.plugin.hooks[hook] === 'function');
  const at = {
    patchEmbed: withHook('patchEmbed'),
    embed: withHook('embed'),
    blockStart: withHook('blockStart'),
    qkv: withHook('qkv'),
    attention: withHook('attention'),
    attnLogits: withHook('attnLogits'),
    proj: withHook('proj'),
    attnOut: withHook('attnOut'),
    mlp: withHook('mlp'),
    fc1: withHook('fc1'),
    fc2: withHook('fc2'),
    blockEnd: withHook('blockEnd'),
    head: withHook('head'),
    auxLoss: withHook('auxLoss'),
  };

  const streamHook = (
    list: DriverPlugin[],
    hook: 'embed' | 'blockStart' | 'blockEnd',
    stream: TokenStream,
    block?: number,
  ): TokenStream => {
    let current = stream;
    for (const { plugin, ctx } of list) {
      const result = callHook(plugin, hook, block, () =>
        hook === 'embed'
          ? plugin.hooks.embed?.(ctx, current)
          : plugin.hooks[hook]?.(ctx, current, block as number),
      );
      if (result !== undefined) current = result;
    }
    return current;
  };

  /** Builds the wrapper chain: the first plugin wraps the base, each later one wraps the previous. */
  function chain<A, R>(
    list: DriverPlugin[],
    hook: HookName,
    block: number | undefined,
    base: (arg: A) => R,
    invoke: (entry: DriverPlugin, arg: A, next: (arg: A) => R) => R,
  ): (arg: A) => R {
    let fn = base;
    for (const entry of list) {
      const inner = fn;
      fn = (arg: A) => callHook(entry.plugin, hook, block, () => invoke(entry, arg, inner));
    }
    return fn;
  }

  /**
   * A wrapping site over a per-token map `[B, N, ·]` → `[B, N, width]` (a linear layer, or the whole MLP): the
   * plugins' wrappers around `base`, each result checked against that shape.
   */
  const tokenMap =
    (hook: TokenMapSite, width: number, what: string) =>
    (input: Tensor3D, block: number | undefined, base: (input: Tensor3D) => Tensor3D): Tensor3D =>
      chain<Tensor3D, Tensor3D>(at[hook], hook, block, base, ({ plugin, ctx }, x, next) =>
        expectShape(
          // patchEmbed hooks take no block index; the extra argument is ignored there.
          (plugin.hooks[hook] as NonNullable<PluginHooks['qkv']>)(ctx, x, next, block as number),
          [x.shape[0], x.shape[1], width],
          what,
        ),
      )(input);
  const { dim } = info.config;

  return {
    info,
    rng: rng.split('backbone'),
    losses,
    patchEmbed: (input, base) => tokenMap('patchEmbed', dim, 'the patch embedding')(input, undefined, base),
    embed: (stream) => streamHook(at.embed, 'embed', stream),
    blockStart: (stream, block) => streamHook(at.blockStart, 'blockStart', stream, block),
    blockEnd: (stream, block) => streamHook(at.blockEnd, 'blockEnd', stream, block),
    qkv: tokenMap('qkv', 3 * dim, 'the qkv projection'),
    proj: tokenMap('proj', dim, 'the output projection'),
    mlp: tokenMap('mlp', dim, 'the MLP output'),
    fc1: tokenMap('fc1', info.config.mlpHidden, 'the first MLP layer'),
    fc2: tokenMap('fc2', dim, 'the second MLP layer'),
    attention: (args: AttentionArgs, base) => {
      const result = chain<AttentionArgs, AttentionResult>(
        at.attention,
        'attention',
        args.block,
        base,
        ({ plugin, ctx }, a, next) => {
          const out = (plugin.hooks.attention as NonNullable<typeof plugin.hooks.attention>)(ctx, a, next);
          expectShape(out.output, a.input.shape, 'the attention output');
          return out;
        },
      )(args);
      for (const { plugin, ctx } of at.attnLogits) {
        callHook(plugin, 'attnLogits', args.block, () =>
          plugin.hooks.attnLogits?.(ctx, result.logits, { block: args.block, layout: args.layout }),
        );
      }
      return result;
    },
    attnOut: (output: Tensor3D, block: number, layout: TokenLayout) => {
      let current = output;
      for (const { plugin, ctx } of at.attnOut) {
        const input = current;
        current = callHook(plugin, 'attnOut', block, () =>
          expectShape(
            (plugin.hooks.attnOut as NonNullable<typeof plugin.hooks.attnOut>)(ctx, input, block, layout),
            input.shape,
            'the attention branch',
          ),
        );
      }
      return current;
    },
    head: (features, base) =>
      chain<Tensor2D, Tensor2D>(at.head, 'head', undefined, base, ({ plugin, ctx }, f, next) =>
        (plugin.hooks.head as NonNullable<typeof plugin.hooks.head>)(ctx, f, next),
      )(features),
    promptsIsolated: (block) => {
      const owner = at.attention.find((a) => !(a.plugin.composes ?? []).includes('attention'));
      return owner?.plugin.isolatesPrompts?.(block, info.config) ?? false;
    },
    auxLoss: (output) => {
      for (const { plugin, ctx } of at.auxLoss) {
        callHook(plugin, 'auxLoss', undefined, () => plugin.hooks.auxLoss?.(ctx, output));
      }
    },
  };
}

/** Sum of `weight · value` over named losses (0 when there are none). */
export function sumLosses(losses: readonly NamedLoss[]): Scalar {
  return tf.tidy(() =>
    losses.reduce<Scalar>((acc, l) => tf.add(acc, tf.mul(l.value, l.weight)) as Scalar, tf.scalar(0)),
  );
}
