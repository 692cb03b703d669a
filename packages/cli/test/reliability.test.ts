/**
 * The run folder as a unit that survives: one writer at a time, clear errors for bad output folders, awaited log
 * writes (a full disk stops the run, the last good checkpoint stays), resume that refuses another model or data,
 * and the vtab protocol resuming stage by stage to the same result.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@peftjs/core';
import { readCheckpoint } from '@peftjs/train';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EXIT } from '../src/main.js';
import { makeMnistTask, peft, writeTinyWeights } from './cli-fixtures.js';

/** The next append `failOn` accepts fails like a full disk (a hook on the fs call, not timing). */
const fault = vi.hoisted(() => ({ failOn: null as ((text: string) => boolean) | null }));
vi.mock('node:fs/promises', async (original) => {
  const fs = await original<typeof import('node:fs/promises')>();
  return {
    ...fs,
    appendFile: async (...args: Parameters<typeof fs.appendFile>) => {
      if (fault.failOn && typeof args[1] === 'string' && fault.failOn(args[1])) {
        fault.failOn = null;
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      }
      return fs.appendFile(...args);
    },
  };
});

describe('run folders that survive', () => {
  let dir: string;
  let weights: string;
  let config: string;

  beforeAll(async () => {
    await initBackend({ prefer: 'wasm', log: false });
    dir = await mkdtemp(join(tmpdir(), 'peftjs-reliability-'));
    await makeMnistTask(join(dir, 'vtab'));
    weights = await writeTinyWeights(dir);
    config = join(dir, 'run.yaml');
    await writeFile(
      config,
      [
        'backend: wasm',
        'seed: 3',
        `model: { weights: ${weights} }`,
        'method: { name: linear }',
        `data: { format: vtab, root: ${join(dir, 'vtab')}, task: mnist, numClasses: 10 }`,
        'train: { epochs: 3, batchSize: 10, lr: 0.01, warmupEpochs: 0, evalEvery: 1, checkpointEvery: 1 }',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a second command in a folder a live process holds, naming its pid; takes over a dead one', async () => {
    const out = join(dir, 'locked');
    const owner = (pid: number) =>
      `${JSON.stringify({ pid, host: hostname(), command: 'peft train', started: 'now' })}\n`;
    await peft('train', '--config', config, `--out=${out}`, '--dry-run');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(out, { recursive: true });
    await writeFile(join(out, '.peftjs-lock'), owner(process.pid));
    const refused = await peft('train', '--config', config, `--out=${out}`);
    expect(refused.code).toBe(EXIT.failure);
    expect(refused.err).toMatch(new RegExp(`is in use by pid ${process.pid} on ${hostname()} \\(peft train`));
    expect(existsSync(join(out, 'manifest.json'))).toBe(false);
    // A lock left by a process that is gone is taken over.
    const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid as number;
    await writeFile(join(out, '.peftjs-lock'), owner(dead));
    const taken = await peft('train', '--config', config, `--out=${out}`);
    expect(taken.code, taken.err).toBe(EXIT.ok);
    expect(existsSync(join(out, '.peftjs-lock'))).toBe(false);
  });

  it('names a bad output folder: empty, or under a file', async () => {
    const empty = await peft('train', '--config', config, '--out=');
    expect(empty.code).toBe(EXIT.usage);
    expect(empty.err).toMatch(/--out: option "out"/);
    const underFile = await peft('train', '--config', config, `--out=${join(weights, 'run')}`);
    expect(underFile.code).toBe(EXIT.failure);
    expect(underFile.err).toMatch(/cannot create folder ".*tiny-vit\.safetensors\/run"/);
  });

  it('a full disk while logging stops the run with exit 1 and keeps the last good checkpoint', async () => {
    const out = join(dir, 'full-disk');
    fault.failOn = (text) => text.includes('"type":"epoch-start","epoch":2');
    const failed = await peft('train', '--config', config, `--out=${out}`, '--train.protocol=single');
    expect(failed.code).toBe(EXIT.failure);
    expect(failed.err).toMatch(/could not write .*full-disk\/log\.jsonl: ENOSPC: no space left on device/);
    const { info } = await readCheckpoint(join(out, 'checkpoints'));
    expect(info.epochsCompleted).toBe(2);
    expect(existsSync(join(out, 'results.json'))).toBe(false);
    // It continues from there when asked, and only when asked.
    const again = await peft('train', '--config', config, `--out=${out}`, '--train.protocol=single');
    expect(again.code).toBe(EXIT.usage);
    expect(again.err).toMatch(/already holds a run: pass --train\.resume=true/);
    const resumed = await peft(
      'train',
      '--config',
      config,
      `--out=${out}`,
      '--train.protocol=single',
      '--train.resume=true',
    );
    expect(resumed.code, resumed.err).toBe(EXIT.ok);
    const log = await readFile(join(out, 'log.jsonl'), 'utf8');
    expect(log).toMatch(/"type":"resume","epoch":2/);
  });

  it('resume refuses other weights, other method options and other data, naming what differs', async () => {
    const out = join(dir, 'identity');
    const first = await peft(
      'train',
      '--config',
      config,
      `--out=${out}`,
      '--train.protocol=single',
      '--train.stopAfterEpochs=1',
    );
    expect(first.code, first.err).toBe(EXIT.ok);
    const other = await writeTinyWeights(join(dir, 'other'), 8);
    const resume = [
      'train',
      '--config',
      config,
      `--out=${out}`,
      '--train.protocol=single',
      '--train.resume=true',
    ];
    const weightsDiffer = await peft(...resume, `--model.weights=${other}`);
    expect(weightsDiffer.code).toBe(EXIT.failure);
    expect(weightsDiffer.err).toMatch(/cannot resume from .*: the base weights differ from the checkpoint's/);
    const optionsDiffer = await peft(...resume, '--method.name=vpt', '--method.options.tokens=2');
    expect(optionsDiffer.code).toBe(EXIT.failure);
    expect(optionsDiffer.err).toMatch(/cannot resume from .*: the plugins differ/);
    await makeMnistTask(join(dir, 'vtab2'));
    const rows = (await readFile(join(dir, 'vtab2', 'mnist', 'train800val200.txt'), 'utf8'))
      .trim()
      .split('\n');
    await writeFile(
      join(dir, 'vtab2', 'mnist', 'train800val200.txt'),
      `${rows
        .reverse()
        .map((r, i) => (i === 0 ? r.replace(/ \d+$/, ' 9') : r))
        .join('\n')}\n`,
    );
    const dataDiffer = await peft(...resume, `--data.root=${join(dir, 'vtab2')}`);
    expect(dataDiffer.code).toBe(EXIT.failure);
    expect(dataDiffer.err).toMatch(/cannot resume from .*: the train data differ/);
  });

  it('the vtab protocol resumes stage by stage to the same result as an uninterrupted run', async () => {
    const whole = join(dir, 'vtab-whole');
    const cut = join(dir, 'vtab-cut');
    const full = await peft('train', '--config', config, `--out=${whole}`);
    expect(full.code, full.err).toBe(EXIT.ok);
    const log = async (path: string) => (await readFile(join(path, 'log.jsonl'), 'utf8')).trim().split('\n');
    const epochStarts = (await log(whole)).filter((l) => l.includes('"type":"epoch-start"')).length;
    // 3 selection epochs, then the final fit for the epoch count the selection chose (at least 1).
    expect(epochStarts).toBeGreaterThanOrEqual(4);
    // The same run, stopped by a full disk at the start of the final fit's last epoch, then resumed.
    let seen = 0;
    fault.failOn = (text) => text.includes('"type":"epoch-start"') && ++seen === epochStarts;
    const stopped = await peft('train', '--config', config, `--out=${cut}`);
    expect(stopped.code).toBe(EXIT.failure);
    const resumed = await peft('train', '--config', config, `--out=${cut}`, '--train.resume=true');
    expect(resumed.code, resumed.err).toBe(EXIT.ok);
    const cutLog = await log(cut);
    // The selection stage was not trained again: its checkpoint was reloaded.
    expect(cutLog.filter((l) => l.includes('"type":"resume"')).length).toBe(2);
    const results = async (path: string) =>
      JSON.parse(await readFile(join(path, 'results.json'), 'utf8')) as { test: { top1: number } };
    expect((await results(cut)).test.top1).toBe((await results(whole)).test.top1);
    expect(await readFile(join(cut, 'predictions.jsonl'), 'utf8')).toBe(
      await readFile(join(whole, 'predictions.jsonl'), 'utf8'),
    );
  });

  it('reads weights only from regular files: /dev/zero and a folder are refused at once', async () => {
    const inspected = await peft('inspect', '/dev/zero');
    expect(inspected.code).toBe(EXIT.usage);
    expect(inspected.err).toMatch(/\/dev\/zero: a character device, not a regular file/);
    const trained = await peft('train', '--config', config, '--model.weights=/dev/zero', '--dry-run');
    expect(trained.code).toBe(EXIT.failure);
    expect(trained.err).toMatch(
      /cannot read weights file \/dev\/zero: a character device, not a regular file/,
    );
    const folder = await peft('train', '--config', config, `--model.weights=${dir}`, '--dry-run');
    expect(folder.code).toBe(EXIT.failure);
    expect(folder.err).toMatch(/a directory, not a regular file/);
  });

  it('refuses export --to an existing file, and bench --iters 0', async () => {
    const run = join(dir, 'vtab-whole');
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    const exported = await peft('export', '--config', config, '--run', run, '--to', file);
    expect(exported.code).toBe(EXIT.usage);
    expect(exported.err).toMatch(/--to .*a-file exists and is not a folder/);
    const bench = await peft('bench', '--config', config, '--iters', '0');
    expect(bench.code).toBe(EXIT.usage);
    expect(bench.err).toMatch(/--iters must be a positive integer; got 0/);
  });
});
