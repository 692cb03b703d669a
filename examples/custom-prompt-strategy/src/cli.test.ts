import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT, runCli } from '@peftjs/cli';
import { writeMnistIdx, writeTinyVitWeights } from '@peftjs/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const moduleFile = join(dirname(fileURLToPath(import.meta.url)), 'index.ts');
const exampleDir = join(dirname(fileURLToPath(import.meta.url)), '..');

async function peft(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, {
    out: {
      isTTY: false,
      write: (t) => {
        out += t;
      },
    },
    err: {
      isTTY: false,
      write: (t) => {
        err += t;
      },
    },
  });
  return { code, out, err };
}

describe('a third-party method trains through `peft train` like a built-in one', () => {
  let dir: string;
  let config: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'peftjs-gated-cli-'));
    await writeTinyVitWeights(join(dir, 'vit.safetensors'), 3);
    await writeMnistIdx(join(dir, 'mnist'), { train: 60, test: 20 });
    config = join(dir, 'run.yaml');
    await writeFile(
      config,
      [
        'backend: wasm',
        'seed: 2',
        `out: ${join(dir, 'run')}`,
        `model: { weights: ${join(dir, 'vit.safetensors')} }`,
        // The method is a module: this example's own file, named by path.
        `method: { name: ${moduleFile}, options: { tokens: 2 } }`,
        `data: { format: idx, root: ${join(dir, 'mnist')}, numClasses: 10 }`,
        'train: { protocol: single, epochs: 1, batchSize: 10, lr: 0.01 }',
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('checks its options against its own schema, with a did-you-mean', async () => {
    const typo = await peft('train', '--config', config, '--method.options.tokns=3');
    expect(typo.code).toBe(EXIT.usage);
    expect(typo.err).toBe(
      'peft: unknown flag --method.options.tokns (did you mean "method.options.tokens"?)\n',
    );
    const help = await peft('train', '--help', `--method.name=${moduleFile}`);
    expect(help.out).toMatch(/--method\.options\.tokens\s+prompt tokens per block \(default 4\)/);
  });

  it('trains, reports through its report capability and reloads from the adapter for eval', async () => {
    const trained = await peft('train', '--config', config);
    expect(trained.code, trained.err).toBe(EXIT.ok);
    const run = join(dir, 'run');
    const results = JSON.parse(await readFile(join(run, 'results.json'), 'utf8')) as {
      method: string;
      methodReport: { gates: number[] };
    };
    expect(results.method).toBe(moduleFile);
    expect(results.methodReport.gates).toHaveLength(4);
    expect(results.methodReport.gates.some((g) => g !== 0)).toBe(true);
    expect(await readFile(join(run, 'report.md'), 'utf8')).toMatch(/- gates tanh\(g\) per block: /);
    const manifest = JSON.parse(await readFile(join(run, 'manifest.json'), 'utf8'));
    expect(manifest.config.method.options).toEqual({ tokens: 2, initScale: 0.05, name: 'gated-prompts' });
    const adapter = JSON.parse(await readFile(join(run, 'adapter', 'adapter_config.json'), 'utf8'));
    expect(adapter.plugins.map((p: { type: string }) => p.type)).toEqual(['gated-prompts']);
    const evaluated = await peft('eval', '--config', config, '--adapter', join(run, 'adapter'));
    expect(evaluated.code, evaluated.err).toBe(EXIT.ok);
    expect(JSON.parse(evaluated.out).count).toBe(20);
  });

  it('loads by package name too, resolved from the config file’s folder', async () => {
    const byName = join(exampleDir, '.peft-test-run.yaml');
    await writeFile(
      byName,
      (await readFile(config, 'utf8')).replace(moduleFile, '"@peftjs-examples/custom-prompt-strategy"'),
    );
    try {
      const { code, out, err } = await peft('train', '--config', byName, '--dry-run');
      expect(code, err).toBe(EXIT.ok);
      expect(JSON.parse(out.slice(0, out.lastIndexOf('}') + 1)).parameters.trainableWithoutHead).toBe(
        4 * 2 * 32 + 4,
      );
    } finally {
      await rm(byName, { force: true });
    }
    expect(existsSync(byName)).toBe(false);
  });
});
