import { describe, expect, it } from 'vitest';
import type { VitConfig } from './config.js';
import { vitGeometry } from './config.js';
import { createHookDriver, resolvePluginOrder } from './driver.js';
import { HOOK_SPEC_VERSION, type PeftPlugin, type PluginHooks, type PluginTier } from './plugin.js';
import { Rng } from './random.js';
import { ParameterRegistry } from './registry.js';
import { tf } from './tf.js';
import type { Tensor3D } from './tf.js';
import { TokenStream } from './tokens.js';

const config: VitConfig = {
  imageSize: [8, 8],
  patchSize: 4,
  channels: 3,
  dim: 4,
  depth: 2,
  heads: 2,
  mlpHidden: 8,
  numClasses: 3,
  layerNormEps: 1e-6,
  qkvBias: true,
  dropPathRate: 0,
};

function plugin(name: string, hooks: PluginHooks = {}, extra: Partial<PeftPlugin> = {}): PeftPlugin {
  return {
    name,
    version: '1.0.0',
    specVersion: HOOK_SPEC_VERSION,
    prefix: name.replace(/-/g, '_'),
    hooks,
    ...extra,
  };
}

function driverFor(plugins: PeftPlugin[]) {
  const info = { config, geometry: vitGeometry(config), training: true, batchSize: 1, epoch: 0 };
  return createHookDriver(resolvePluginOrder(plugins), new ParameterRegistry(), info, new Rng(0));
}

describe('plugin order', () => {
  it('runs tiers pre → normal → post, then list order within a tier', () => {
    const tiers: [string, PluginTier | undefined][] = [
      ['a', 'post'],
      ['b', undefined],
      ['c', 'pre'],
      ['d', 'normal'],
      ['e', 'pre'],
    ];
    const ordered = resolvePluginOrder(tiers.map(([n, tier]) => plugin(n, {}, tier ? { tier } : {})));
    expect(ordered.map((p) => p.name)).toEqual(['c', 'e', 'b', 'd', 'a']);
  });

  it('wraps in that order: the first plugin wraps the base, the last is outermost', () => {
    const calls: string[] = [];
    const wrap =
      (name: string): NonNullable<PluginHooks['mlp']> =>
      (_ctx, input, next) => {
        calls.push(`${name}:in`);
        const out = next(input);
        calls.push(`${name}:out`);
        return out;
      };
    const driver = driverFor([
      plugin('outer', { mlp: wrap('outer') }, { tier: 'post' }),
      plugin('inner', { mlp: wrap('inner') }),
    ]);
    const x = tf.zeros([1, 2, 4]) as Tensor3D;
    driver.mlp(x, 0, (input) => {
      calls.push('base');
      return input;
    });
    expect(calls).toEqual(['outer:in', 'inner:in', 'base', 'inner:out', 'outer:out']);
  });

  it('threads the stream through stream hooks in order', () => {
    const seen: string[] = [];
    const driver = driverFor([
      plugin('one', {
        blockStart: (_c, s, b) => {
          seen.push(`one@${b}`);
          return s;
        },
      }),
      plugin('two', { blockStart: (_c, s, b) => void seen.push(`two@${b}:${s.segments.length}`) }),
      plugin(
        'zero',
        { blockStart: (ctx, s) => s.withSegment('z', ctx.plugin, tf.zeros([1, 1, 4]) as Tensor3D) },
        { tier: 'pre' },
      ),
    ]);
    driver.blockStart(new TokenStream(tf.zeros([1, 3, 4]) as Tensor3D), 1);
    expect(seen).toEqual(['one@1', 'two@1:1']);
  });
});

describe('plugin validation and conflicts', () => {
  it('rejects a plugin written for another hook API version, naming it', () => {
    expect(() => resolvePluginOrder([plugin('old', {}, { specVersion: 2 })])).toThrow(
      /plugin #0 "old": targets hook API version 2; this PEFT.js implements version 1/,
    );
  });

  it('rejects unknown hook names and bad prefixes', () => {
    expect(() =>
      resolvePluginOrder([plugin('typo', { blockStrat: () => undefined } as PluginHooks)]),
    ).toThrow(/unknown hook "blockStrat"/);
    expect(() => resolvePluginOrder([plugin('p', {}, { prefix: 'blocks' })])).toThrow(
      /collides with backbone/,
    );
    expect(() => resolvePluginOrder([plugin('p', {}, { prefix: '9x' })])).toThrow(/dotted identifier/);
  });

  it('rejects duplicate names and overlapping prefixes', () => {
    expect(() => resolvePluginOrder([plugin('x'), plugin('x', {}, { prefix: 'y' })])).toThrow(
      /two plugins are named "x"/,
    );
    expect(() =>
      resolvePluginOrder([plugin('a', {}, { prefix: 'ship' }), plugin('b', {}, { prefix: 'ship.sip' })]),
    ).toThrow(/"a" and "b" use overlapping parameter prefixes/);
  });

  it('rejects two plugins overriding the same exclusive site, naming both', () => {
    const attention: PluginHooks['attention'] = (_c, args, next) => next(args);
    expect(() =>
      resolvePluginOrder([plugin('da', { attention }), plugin('other-da', { attention })]),
    ).toThrow(/plugins "da" and "other-da" both override "attention"/);
    expect(() =>
      resolvePluginOrder([plugin('h1', { head: (_c, f) => f }), plugin('h2', { head: (_c, f) => f })]),
    ).toThrow(/both override "head"/);
  });

  it('accepts an override plus a plugin that declares it composes, if the override runs first', () => {
    const attention: PluginHooks['attention'] = (_c, args, next) => next(args);
    const composer = plugin('observer', { attention }, { composes: ['attention'] });
    expect(resolvePluginOrder([plugin('da', { attention }), composer]).map((p) => p.name)).toEqual([
      'da',
      'observer',
    ]);
    expect(() => resolvePluginOrder([composer, plugin('da', { attention })])).toThrow(
      /must run before "observer"/,
    );
  });
});

describe('linear-layer sites', () => {
  it('wrap proj, fc1 and fc2 like qkv and check each width: D, mlpHidden, D', () => {
    const calls: string[] = [];
    const recording =
      (site: string): NonNullable<PluginHooks['proj']> =>
      (_c, x, next, block) => {
        calls.push(`${site}(${block}) ${x.shape}`);
        return next(x);
      };
    const driver = driverFor([
      plugin('widths', { proj: recording('proj'), fc1: recording('fc1'), fc2: recording('fc2') }),
    ]);
    const tokens = tf.zeros([1, 2, 4]) as Tensor3D;
    const widen = (x: Tensor3D) => tf.concat([x, x], 2) as Tensor3D;
    const narrow = (x: Tensor3D) => tf.slice(x, [0, 0, 0], [-1, -1, 4]) as Tensor3D;
    expect(driver.proj(tokens, 0, (x) => x).shape).toEqual([1, 2, 4]);
    const hidden = driver.fc1(tokens, 1, widen);
    expect(hidden.shape).toEqual([1, 2, 8]);
    expect(driver.fc2(hidden, 1, narrow).shape).toEqual([1, 2, 4]);
    expect(calls).toEqual(['proj(0) 1,2,4', 'fc1(1) 1,2,4', 'fc2(1) 1,2,8']);
  });

  it('name the layer and the plugin when a wrapper returns the wrong width', () => {
    const driver = driverFor([plugin('narrow', { fc1: (_c, x) => x })]);
    const x = tf.zeros([1, 2, 4]) as Tensor3D;
    expect(() => driver.fc1(x, 0, (i) => tf.concat([i, i], 2) as Tensor3D)).toThrow(
      'plugin "narrow" failed in hook fc1(0): the first MLP layer must be [1,2,8]; the hook returned [1,2,4]',
    );
  });
});

describe('hook errors', () => {
  it('name the plugin and the hook with its block index', () => {
    const driver = driverFor([
      plugin('broken', {
        qkv: () => {
          throw new Error('rank mismatch');
        },
      }),
    ]);
    const x = tf.zeros([1, 2, 4]) as Tensor3D;
    expect(() => driver.qkv(x, 3, (i) => i)).toThrow('plugin "broken" failed in hook qkv(3): rank mismatch');
  });

  it('attribute a failure inside a wrapped inner plugin to that plugin, not the outer one', () => {
    const driver = driverFor([
      plugin('inner', {
        mlp: () => {
          throw new Error('boom');
        },
      }),
      plugin('outer', { mlp: (_c, x, next) => next(x) }),
    ]);
    const x = tf.zeros([1, 2, 4]) as Tensor3D;
    expect(() => driver.mlp(x, 0, (i) => i)).toThrow('plugin "inner" failed in hook mlp(0): boom');
  });

  it('collects named auxiliary losses and rejects non-scalar ones', () => {
    const driver = driverFor([
      plugin('pml', { auxLoss: (ctx) => ctx.addLoss('pml', tf.scalar(2), 0.5) }),
      plugin('bad', { auxLoss: (ctx) => ctx.addLoss('vec', tf.ones([2]) as unknown as tf.Scalar) }),
    ]);
    expect(() => driver.auxLoss({ logits: tf.zeros([1, 3]) as tf.Tensor2D, tokens: null as never })).toThrow(
      /plugin "bad" failed in hook auxLoss: loss "vec" of plugin "bad" must be a scalar/,
    );
    expect(driver.losses.map((l) => [l.name, l.plugin, l.weight])).toEqual([['pml', 'pml', 0.5]]);
  });
});
