/**
 * What `peft sweep` costs on top of running its jobs directly (a benchmark, not a test). One call runs the same
 * four tiny jobs (linear probe, seeds 1-4, 1 epoch on a 64/32/64-image procedural mini-VTAB task, the bundled tiny
 * ViT) in one of three ways, from a clean state each time, and exits when they are done:
 *
 *   pnpm bench:sweep-overhead --mode direct                  # the 4 `peft train --config` commands, one after another
 *   pnpm bench:sweep-overhead --mode local                   # `peft sweep --workers 1`
 *   pnpm bench:sweep-overhead --mode queue --queue redis://127.0.0.1:6379
 *                                                            # `peft sweep --queue` with one `peft worker` it starts
 *
 * Time whole calls with an external timer (e.g. `/usr/bin/time -v`, several runs each, medians): the difference
 * between modes is the sweep's overhead (planning and resolving configs, the leader's process, the results file and
 * report, and for the queue Redis round trips and one worker's start). Every mode runs the built `peft`
 * (`packages/cli/dist/bin.js`: run `pnpm build` first) with the same environment.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateTask } from '@peftjs/mini-vtab';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'direct' },
    queue: { type: 'string' },
    dir: { type: 'string', default: '.cache/sweep-overhead' },
  },
});
const root = resolve(fileURLToPath(import.meta.url), '../..');
const peft = join(root, 'packages/cli/dist/bin.js');
if (!existsSync(peft)) throw new Error(`${peft} is missing: run \`pnpm build\` first`);
const dir = resolve(values.dir);
const TASK = 'count';
const SEEDS = [1, 2, 3, 4];

const base = {
  backend: 'wasm',
  model: { weights: join(root, 'models/peftjs-vit-tiny12-p8-32.safetensors') },
  data: { format: 'vtab', root: join(dir, 'data'), task: TASK, normalization: 'inception' },
  method: { name: 'linear' },
  train: { protocol: 'refit', epochs: 1, batchSize: 32, warmupEpochs: 0, evalEvery: 1 },
};

function run(args: string[]): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [peft, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', fail);
    child.on('close', (code) =>
      code === 0 ? done() : fail(new Error(`peft ${args.join(' ')} exited with ${code}`)),
    );
  });
}

if (!existsSync(join(dir, 'data', TASK, 'test.txt'))) {
  await generateTask(TASK, {
    root: join(dir, 'data'),
    seed: 0,
    counts: { train800: 64, val200: 32, test: 64 },
  });
}
const out = join(dir, values.mode);
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });

if (values.mode === 'direct') {
  for (const seed of SEEDS) {
    const config = join(out, `seed-${seed}.json`);
    await writeFile(config, JSON.stringify({ ...base, seed, out: join(out, `seed-${seed}`) }));
    await run(['train', '--config', config]);
  }
} else if (values.mode === 'local' || values.mode === 'queue') {
  const sweep = join(out, 'sweep.json');
  const name = `overhead-${process.pid}`;
  await writeFile(
    sweep,
    JSON.stringify({
      name,
      base: { ...base, data: { ...base.data, task: undefined } },
      axes: { tasks: [TASK], seeds: SEEDS },
      methods: { linear: { config: { method: { name: 'linear' } } } },
      report: { out: join(out, 'report.md') },
    }),
  );
  if (values.mode === 'local') {
    await run(['sweep', '--config', sweep, '--out', out, '--workers', '1']);
  } else {
    if (!values.queue) throw new Error('--mode queue needs --queue redis://host:port');
    const worker = spawn(
      process.execPath,
      [peft, 'worker', '--queue', values.queue, '--sweep', name, '--out', out],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    try {
      await run(['sweep', '--config', sweep, '--out', out, '--queue', values.queue]);
    } finally {
      worker.kill('SIGTERM');
      await new Promise((done) => worker.on('close', done));
    }
  }
} else {
  throw new Error(`--mode must be direct, local or queue; got "${values.mode}"`);
}
