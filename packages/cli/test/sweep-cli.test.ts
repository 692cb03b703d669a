/**
 * `peft sweep` end to end with the embedded local runner: real `peft train` child processes on a tiny task, two at a
 * time; the vtab protocol's selection on seed 1, refits for every seed, the report from the results file alone,
 * and a rerun of the finished sweep that starts nothing.
 */
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepCommand } from '../src/sweep/command.js';
import type { SweepRecord } from '../src/sweep/leader.js';
import { ResultsFile } from '../src/sweep/store.js';
import { makeMnistTask, writeTinyWeights } from './cli-fixtures.js';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../../../..');
/** `peft` from source, as a child process. */
const command = {
  executable: process.execPath,
  args: ['--conditions=@peftjs/source', '--import', 'tsx', join(repoRoot, 'packages/cli/src/bin.ts')],
};

function sink() {
  let text = '';
  return {
    write: (t: string) => {
      text += t;
    },
    isTTY: false,
    text: () => text,
  };
}

describe('peft sweep with the local runner', () => {
  let dir: string;
  let sweepFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'peftjs-sweep-cli-'));
    await makeMnistTask(join(dir, 'vtab'));
    const weights = await writeTinyWeights(dir);
    sweepFile = join(dir, 'toy.yaml');
    await writeFile(
      sweepFile,
      [
        'name: toy',
        'base:',
        '  backend: wasm',
        `  model: { weights: ${weights} }`,
        `  data: { format: vtab, root: ${join(dir, 'vtab')}, numClasses: 10 }`,
        '  train: { epochs: 2, batchSize: 10, warmupEpochs: 0, evalEvery: 1, checkpointEvery: 2 }',
        'axes:',
        '  tasks: [mnist]',
        '  seeds: [1, 2]',
        'methods:',
        '  linear: { config: { method: { name: linear } } }',
        '  vpt: { config: { method: { name: vpt, options: { mode: deep, tokens: 2 } } } }',
        'protocol:',
        '  name: vtab',
        '  grid: { train.lr: [0.001, 0.01] }',
        'report:',
        '  title: Toy sweep',
        `  out: ${join(dir, 'report', 'results.md')}`,
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs 8 jobs over 2 workers, each once, and writes the report; a rerun starts nothing', async () => {
    const out = sink();
    const err = sink();
    const failed = await sweepCommand(
      { file: sweepFile, out: join(dir, 'sweep'), workers: 2, command },
      out,
      err,
    );
    expect(failed, err.text()).toBe(0);
    const records = [
      ...((
        await new ResultsFile(join(dir, 'sweep', 'results.jsonl')).read()
      ).values() as Iterable<SweepRecord>),
    ];
    expect(records).toHaveLength(8);
    expect(records.every((r) => r.status === 'done' && r.baseFingerprint?.startsWith('sha256:'))).toBe(true);
    expect(
      records
        .filter((r) => r.phase === 'select')
        .every((r) => r.metrics?.valTop1 !== undefined && r.metrics.testTop1 === undefined),
    ).toBe(true);
    expect(records.filter((r) => r.phase === 'refit').every((r) => r.metrics?.testTop1 !== undefined)).toBe(
      true,
    );
    const report = await readFile(join(dir, 'report', 'results.md'), 'utf8');
    expect(report).toMatch(/\| linear \| 2 \| [\d.]+ ± [\d.]+ \|/);
    expect(report).toMatch(/## What the selection chose/);

    const again = sink();
    expect(
      await sweepCommand({ file: sweepFile, out: join(dir, 'sweep'), workers: 2, command }, sink(), again),
    ).toBe(0);
    expect(again.text()).not.toMatch(/seed \d+ (select|refit)/);
    expect(await new ResultsFile(join(dir, 'sweep', 'results.jsonl')).read()).toHaveProperty('size', 8);
  });

  it('refuses a typo in the sweep file with a did-you-mean', async () => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, (await readFile(sweepFile, 'utf8')).replace('protocol:', 'protocl:'));
    await expect(sweepCommand({ file: bad, command }, sink(), sink())).rejects.toThrow(
      /bad\.yaml: unknown key "protocl" \(did you mean "protocol"\?\)/,
    );
  });
});
