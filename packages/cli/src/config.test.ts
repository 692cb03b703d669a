import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { optionDefaults } from '@peftjs/core';
import { TRAIN_OPTIONS } from '@peftjs/train';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveRunConfig } from './config.js';
import { EXIT, runCli } from './main.js';
import { BUILTIN_METHODS } from './methods.js';
import type { Output } from './progress.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peftjs-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/** The UsageError message `resolveRunConfig` throws. */
async function refusal(sources: Parameters<typeof resolveRunConfig>[0]): Promise<string> {
  try {
    await resolveRunConfig(sources);
  } catch (error) {
    expect((error as Error).name).toBe('UsageError');
    return (error as Error).message;
  }
  throw new Error('expected the config to be refused');
}

const SHIP_YAML = [
  'method:',
  '  name: ship',
  '  options: { threshold: 0.9, promptLength: 2, hierarchy: { prototypes: 4 } }',
  'train:',
  '  lr: 0.01',
  '',
].join('\n');

describe('run configs', () => {
  it('fill every default, the method options too, in schema order', async () => {
    const { config, method } = await resolveRunConfig({});
    expect(method.name).toBe('ship');
    const { seed: _seed, ...trainDefaults } = optionDefaults(TRAIN_OPTIONS);
    expect(config.train).toEqual({ ...trainDefaults, protocol: 'vtab' });
    expect(Object.keys(config)).toEqual([
      'backend',
      'seed',
      'out',
      'preset',
      'model',
      'method',
      'data',
      'train',
    ]);
    expect(config.method.options).toEqual(optionDefaults(method.options));
  });

  it('refuse a typo in every section, naming the file and the closest option', async () => {
    const cases: [string, string][] = [
      ['sede: 3', 'unknown option "sede" (did you mean "seed"?)'],
      ['lr: 0.1', 'unknown option "lr" (did you mean "train.lr"?)'],
      ['model: { weigths: x.safetensors }', 'unknown option "model.weigths" (did you mean "model.weights"?)'],
      ['method: { nmae: lora }', 'unknown option "method.nmae" (did you mean "method.name"?)'],
      ['data: { fromat: idx }', 'unknown option "data.fromat" (did you mean "data.format"?)'],
      ['train: { epoch: 3 }', 'unknown option "train.epoch" (did you mean "train.epochs"?)'],
    ];
    for (const [yaml, message] of cases) {
      const path = await file('typo.yaml', `${yaml}\n`);
      expect(await refusal({ file: path }), yaml).toBe(`${path}:1: ${message}`);
    }
    expect(await refusal({ flags: [['train.epoch', 3]] })).toBe(
      'unknown flag --train.epoch (did you mean "train.epochs"?)',
    );
    expect(await refusal({ flags: [['threshold', 0.9]] })).toBe(
      'unknown flag --threshold (did you mean "method.options.threshold"?)',
    );
    expect(await refusal({ flags: [['train.lr', -1]] })).toMatch(
      /^--train\.lr: option "train\.lr": .*got -1$/,
    );
  });

  it("refuse a typo in any built-in method's options, in a file and in a flag", async () => {
    for (const method of BUILTIN_METHODS) {
      const key = Object.keys(method.options.shape)[0] as string;
      const typo = `${key.slice(0, -1)}`;
      const hint = `(did you mean "method.options.${key}"?)`;
      const path = await file('method.yaml', `method: { name: ${method.name}, options: { ${typo}: 1 } }\n`);
      expect(await refusal({ file: path }), method.name).toBe(
        `${path}:1: unknown option "method.options.${typo}" ${hint}`,
      );
      const flags = [
        ['method.name', method.name],
        [`method.options.${typo}`, 1],
      ] as const;
      expect(await refusal({ flags }), method.name).toBe(`unknown flag --method.options.${typo} ${hint}`);
      // A JSON object flag is checked key by key as well, naming the flag it came from.
      expect(
        await refusal({
          flags: [
            ['method.name', method.name],
            ['method.options', { [typo]: 1 }],
          ],
        }),
        method.name,
      ).toBe(`--method.options: unknown option "method.options.${typo}" ${hint}`);
    }
    const nested = await file('nested.yaml', 'method: { options: { pml: { wieght: 1 } } }\n');
    expect(await refusal({ file: nested })).toBe(
      `${nested}:1: unknown option "method.options.pml.wieght" (did you mean "method.options.pml.weight"?)`,
    );
  });

  it('merge --method.options.KEY=value and --method.options=JSON into the file, deeply', async () => {
    const path = await file('ship.yaml', SHIP_YAML);
    const { config } = await resolveRunConfig({
      file: path,
      flags: [
        ['method.options.threshold', 0.8],
        ['method.options', { hierarchy: { maxImages: 50 } }],
      ],
    });
    expect(config.method.options).toMatchObject({
      threshold: 0.8,
      promptLength: 2,
      hierarchy: { prototypes: 4, maxImages: 50, token: 'cls' },
    });
    const off = await resolveRunConfig({ file: path, flags: [['method.options.decoupledAttention', false]] });
    expect(off.config.method.options.decoupledAttention).toBe(false);
  });

  it('refuse JSON with a duplicate key or section (JSON.parse would keep the last silently)', async () => {
    const path = await file('dup.json', '{ "train": { "lr": 0.1 },\n  "train": { "epochs": 2 } }\n');
    expect(await refusal({ file: path })).toMatch(/dup\.json is not valid JSON: Map keys must be unique/);
    const yaml = await file('dup.yaml', 'train: { lr: 0.1, lr: 0.2 }\n');
    expect(await refusal({ file: yaml })).toMatch(/dup\.yaml is not valid YAML: Map keys must be unique/);
  });

  it('apply a method preset under the file and flags, and flag implausible published values', async () => {
    const path = await file('ship.yaml', SHIP_YAML);
    const { config, warnings } = await resolveRunConfig({ file: path, flags: [['preset', 'vtab:svhn']] });
    // The preset's τ, K and recipe, except where the file says otherwise (threshold, promptLength, lr).
    expect(config.method.options).toMatchObject({ threshold: 0.9, promptLength: 2 });
    expect(config.train).toMatchObject({
      lr: 0.01,
      weightDecay: 0.01,
      epochs: 100,
      batchSize: 64,
      warmupEpochs: 10,
    });
    expect(warnings).toEqual([
      expect.stringMatching(/^preset vtab:svhn: lr 0\.25: .*sweep 1e-3, 5e-3, 1e-2/),
    ]);
    const plain = await resolveRunConfig({ flags: [['preset', 'vtab:dtd']] });
    expect(plain.config.method.options).toMatchObject({ threshold: 0.98, promptLength: 50 });
    expect(plain.warnings).toEqual([]);
    expect(await refusal({ flags: [['preset', 'vtab:ctifar100']] })).toMatch(
      /^--preset: option "preset": method "ship" has no preset "vtab:ctifar100" \(did you mean "vtab:cifar100"\?\)/,
    );
    expect(
      await refusal({
        flags: [
          ['method.name', 'lora'],
          ['preset', 'vtab:dtd'],
        ],
      }),
    ).toMatch(/method "lora" has no preset "vtab:dtd" \(it has none\)/);
  });

  it('name an unknown method with a did-you-mean; exit 2 from the command line', async () => {
    expect(await refusal({ flags: [['method.name', 'lroa']] })).toMatch(
      /^--method\.name: unknown method "lroa" \(did you mean "lora"\?\)/,
    );
    const path = await file('method-name.yaml', 'seed: 2\nmethod:\n  name: vpt-deep\n');
    // A name from a file is blamed on its line.
    expect((await refusal({ file: path })).startsWith(`${path}:3: unknown method "vpt-deep"`)).toBe(true);
    const written: string[] = [];
    const sink: Output = { isTTY: false, write: (text) => written.push(text) };
    const argv = ['train', '--method.options.rnak=4', '--method.name=lora'];
    expect(await runCli(argv, { out: sink, err: sink })).toBe(EXIT.usage);
    expect(written).toEqual([
      'peft: unknown flag --method.options.rnak (did you mean "method.options.rank"?)\n',
    ]);
  });
});

describe('where a bad value came from', () => {
  it('names the line of the key in a multi-line config file', async () => {
    const path = await file('lines.yaml', 'seed: 1\ntrain:\n  lr: 0.01\n  epoch: 3\n');
    expect(await refusal({ file: path })).toBe(
      `${path}:4: unknown option "train.epoch" (did you mean "train.epochs"?)`,
    );
    const invalid = await file('invalid.yaml', 'train:\n  batchSize: 0\n');
    expect(await refusal({ file: invalid })).toMatch(
      new RegExp(`^${invalid.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: option "train\\.batchSize": `),
    );
  });

  it('blames a flag, not the config file under it', async () => {
    const path = await file('base.yaml', SHIP_YAML);
    expect(await refusal({ file: path, flags: [['train.epochs', 0]] })).toMatch(
      /^--train\.epochs: option "train\.epochs": /,
    );
    expect(await refusal({ file: path, flags: [['method.name', 'lroa']] })).toMatch(
      /^--method\.name: unknown method "lroa"/,
    );
  });

  it('says what is wrong with a flag value that looks like JSON but is not, and how to write it', async () => {
    const written: string[] = [];
    const sink: Output = { isTTY: false, write: (text) => written.push(text) };
    const code = await runCli(['train', '--method.name=vpt', '--method.options={tokens:10}'], {
      out: sink,
      err: sink,
    });
    expect(code).toBe(EXIT.usage);
    expect(written.join('')).toMatch(
      /^peft: --method\.options: '\{tokens:10\}' is not valid JSON \(.*\); write --method\.options='\{"tokens": 10\}' \(keys in double quotes\) or --method\.options\.tokens=10\n$/,
    );
    written.length = 0;
    expect(await runCli(['train', '--train.betas', '[0.9,'], { out: sink, err: sink })).toBe(EXIT.usage);
    expect(written.join('')).toMatch(/^peft: --train\.betas: '\[0\.9,' is not valid JSON/);
  });

  it('tells what someone set from what a default supplied', async () => {
    const path = await file('set.yaml', 'train:\n  lr: 0.01\n');
    const { provenance } = await resolveRunConfig({ file: path, flags: [['train.epochs', 4]] });
    expect(provenance.userSet('train.lr')).toBe(true);
    expect(provenance.userSet('train.epochs')).toBe(true);
    expect(provenance.userSet('train.batchSize')).toBe(false);
    expect(provenance.describe('train.lr')).toBe(`${path}:2`);
    expect(provenance.describe('train.epochs')).toBe('--train.epochs');
    expect(provenance.describe('train.batchSize')).toBe('default');
  });
});

describe('an unknown section', () => {
  it('is blamed on the file that wrote it', async () => {
    const path = await file('section.yaml', 'model:\n  weigths:\n    file: x\n');
    expect(await refusal({ file: path })).toBe(
      `${path}:2: unknown option "model.weigths" (did you mean "model.weights"?)`,
    );
  });
});

describe('a config in memory', () => {
  it('is one layer like a file, named by its source in errors', async () => {
    const { config } = await resolveRunConfig({
      config: { value: { train: { lr: 0.02 } }, source: 'sweep job 3', baseDir: dir },
      flags: [['train.epochs', 2]],
    });
    expect(config.train).toMatchObject({ lr: 0.02, epochs: 2 });
    expect(
      await refusal({ config: { value: { train: { lr: -1 } }, source: 'sweep job 3', baseDir: dir } }),
    ).toMatch(/^sweep job 3: option "train\.lr": /);
  });
});
