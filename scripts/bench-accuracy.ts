/**
 * The mini-VTAB accuracy benchmark: `benchmarks/mini-vtab.yaml` run by `peft sweep` (the local worker pool), its
 * results appended to docs/results.jsonl and its report written to docs/results.md (+ docs/results.png).
 *
 *   pnpm bench:accuracy [--workers 2] [--report-only] [--dry-run]
 *
 * Generates the offline mini-VTAB tasks first when they are missing (optdigits and fashion need their Debian
 * packages; see packages/mini-vtab). Every job is one `peft train` run identified by the hash of its resolved
 * config, so an interrupted benchmark resumes where it stopped and nothing is run or counted twice.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, streamOutput } from '@peftjs/cli';
import { generateTask } from '@peftjs/mini-vtab';

const SWEEP = 'benchmarks/mini-vtab.yaml';
const DATA = '.cache/mini-vtab/800-200-1000';
const TASKS = ['count', 'position', 'orientation', 'size', 'texture', 'optdigits', 'fashion'];

const args = process.argv.slice(2);
if (!args.includes('--report-only')) {
  for (const task of TASKS) {
    if (existsSync(join(DATA, task, 'test.txt'))) continue;
    console.error(`generating mini-VTAB task ${task} in ${DATA}`);
    await generateTask(task, { root: DATA, seed: 0 });
  }
}
process.exitCode = await runCli(
  [
    'sweep',
    '--config',
    SWEEP,
    '--out',
    '.cache/sweeps/mini-vtab',
    '--results',
    'docs/results.jsonl',
    ...args,
  ],
  { out: streamOutput(process.stdout), err: streamOutput(process.stderr) },
);
