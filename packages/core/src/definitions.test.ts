import { describe, expect, it } from 'vitest';
import {
  checkMethod,
  createMethodPlugins,
  createPlugin,
  defineMethod,
  definePlugin,
  definePluginMethod,
  methodPluginDefinitions,
  pluginFactories,
} from './definitions.js';
import { checkOptions, optionDefaults, optionKeysAt, optionRows, parseOptions } from './options.js';
import { HOOK_SPEC_VERSION, type PeftPlugin } from './plugin.js';
import { closestMatch, didYouMean, levenshtein } from './suggest.js';
import { z } from 'zod';

const OPTIONS = z.strictObject({
  rank: z.int().positive().default(8).describe('rank'),
  mode: z.enum(['a', 'b']).default('a').describe('mode'),
  nested: z
    .strictObject({ depth: z.number().min(0).default(1).describe('depth') })
    .prefault({})
    .describe('nested options'),
  extra: z
    .union([z.literal(false), z.strictObject({ weight: z.number().default(0.5).describe('weight') })])
    .prefault({})
    .describe('extra options, or false'),
});

function plugin(type: string, options: z.output<typeof OPTIONS>): PeftPlugin {
  return {
    name: type,
    type,
    version: '1.0.0',
    specVersion: HOOK_SPEC_VERSION,
    prefix: type,
    options,
    hooks: {},
  };
}

const TOY = definePluginMethod({
  type: 'toy',
  name: 'toy-method',
  version: '1.0.0',
  description: 'a toy',
  options: OPTIONS,
  create: (options) => plugin('toy', options),
});

/** Expects `fn` to throw a PeftError with `code` whose message matches `message`. */
const expectRefusal = (fn: () => unknown, code: string, message: RegExp | string) =>
  expect(fn).toThrow(
    expect.objectContaining({ name: 'PeftError', code, message: expect.stringMatching(message) }),
  );

describe('did-you-mean', () => {
  it('suggests the closest name within max(2, length/3) edits, case-insensitively', () => {
    expect(levenshtein('rnak', 'rank')).toBe(2);
    expect(closestMatch('thresold', ['threshold', 'promptLength'])).toBe('threshold');
    expect(didYouMean('Threshhold', ['threshold'])).toBe(' (did you mean "threshold"?)');
    expect(didYouMean('zzzz', ['threshold'])).toBe('');
  });
});

describe('parseOptions', () => {
  it('fills every default, nested objects and false-or-object unions included, in schema order', () => {
    const parsed = parseOptions(OPTIONS, {});
    expect(parsed).toEqual({ rank: 8, mode: 'a', nested: { depth: 1 }, extra: { weight: 0.5 } });
    expect(Object.keys(parsed)).toEqual(['rank', 'mode', 'nested', 'extra']);
    expect(parseOptions(OPTIONS, { extra: false }).extra).toBe(false);
    expect(optionDefaults(OPTIONS)).toEqual(parsed);
  });

  it('refuses unknown keys at any depth with the closest known key, and invalid values with what came', () => {
    const bad = () =>
      parseOptions(OPTIONS, { rnak: 4, mode: 'c', nested: { dpeth: 2 }, extra: { wieght: 1 } }, 'toy');
    expectRefusal(bad, 'INVALID_OPTION', /unknown option "toy.rnak" \(did you mean "toy.rank"\?\)/);
    expectRefusal(
      bad,
      'INVALID_OPTION',
      /unknown option "toy.nested.dpeth" \(did you mean "toy.nested.depth"\?\)/,
    );
    expectRefusal(
      bad,
      'INVALID_OPTION',
      /unknown option "toy.extra.wieght" \(did you mean "toy.extra.weight"\?\)/,
    );
    expectRefusal(bad, 'INVALID_OPTION', /option "toy.mode": .*"a"\|"b".*; got "c"/);
    const check = checkOptions(OPTIONS, { rank: 0 });
    expect(check.ok).toBe(false);
    if (!check.ok)
      expect(check.problems).toEqual([{ path: ['rank'], kind: 'invalid', message: expect.any(String) }]);
  });

  it('lists the keys of nested objects for flags and sweep axes', () => {
    expect(optionKeysAt(OPTIONS, [])).toEqual(['rank', 'mode', 'nested', 'extra']);
    expect(optionKeysAt(OPTIONS, ['extra'])).toEqual(['weight']);
    expect(optionKeysAt(OPTIONS, ['rank'])).toBeNull();
  });
});

describe('optionRows', () => {
  it('documents every option with its type, default and description, depth first', () => {
    expect(optionRows(OPTIONS, 'method.options')).toEqual([
      { path: 'method.options.rank', type: 'integer > 0', default: 8, description: 'rank' },
      { path: 'method.options.mode', type: '"a" | "b"', default: 'a', description: 'mode' },
      { path: 'method.options.nested.depth', type: 'number ≥ 0', default: 1, description: 'depth' },
      {
        path: 'method.options.extra',
        type: 'false | object',
        default: { weight: 0.5 },
        description: 'extra options, or false',
      },
      { path: 'method.options.extra.weight', type: 'number', default: 0.5, description: 'weight' },
    ]);
  });
});

describe('definitions', () => {
  it('build plugins through the schema, and rebuild them strictly from adapter options', () => {
    expect(createPlugin(TOY, { rank: 2 }).options).toMatchObject({ rank: 2, mode: 'a' });
    expect(createMethodPlugins(TOY, {})).toHaveLength(1);
    expect(methodPluginDefinitions(TOY)).toEqual([TOY]);
    const factories = pluginFactories([TOY]);
    expect(factories.toy?.({ rank: 3 }).options?.rank).toBe(3);
    expect(() => factories.toy?.({ rnak: 3 })).toThrow(
      'unknown option "toy.rnak" (did you mean "toy.rank"?)',
    );
    expect(() => pluginFactories([TOY, TOY])).toThrow(/two plugin definitions have type "toy"/);
    const liar = definePlugin({ ...TOY, create: (o) => plugin('other', o) });
    expect(() => pluginFactories([liar]).toy?.({})).toThrow(/create returned a plugin of type "other"/);
  });

  it('refuse a schema that is not strict or leaves an option without default or description', () => {
    const loose = { ...TOY, options: z.object({ rank: z.int().default(1).describe('r') }) };
    expectRefusal(() => definePlugin(loose as never), 'PLUGIN_INVALID', /strict zod object/);
    const undocumented = { ...TOY, options: z.strictObject({ rank: z.int().default(1), mode: z.string() }) };
    expectRefusal(
      () => definePlugin(undocumented as never),
      'PLUGIN_INVALID',
      /options without a default or a description: rank, mode/,
    );
    expectRefusal(
      () => defineMethod({ ...TOY, name: '' }),
      'PLUGIN_INVALID',
      /"name" must be a non-empty string/,
    );
    expectRefusal(() => checkMethod({ name: 'x' }), 'PLUGIN_INVALID', /"version" must be a non-empty string/);
  });

  it('refuse a fit or dataLimits capability of the wrong shape', () => {
    const method = { ...TOY, name: 'toy' };
    expectRefusal(
      () => checkMethod({ ...method, fit: { summary: 'x' } }),
      'PLUGIN_INVALID',
      /"fit" must be an object with a fit\(model, data, options\) function/,
    );
    expectRefusal(
      () => checkMethod({ ...method, dataLimits: 3 }),
      'PLUGIN_INVALID',
      /"dataLimits" must be a function/,
    );
    const fit = { summary: 'nothing', fit: async () => ({ chosen: {}, candidates: [], fittedOn: 0 }) };
    expect(checkMethod({ ...method, fit, dataLimits: () => [] })).toMatchObject({ name: 'toy' });
  });
});
