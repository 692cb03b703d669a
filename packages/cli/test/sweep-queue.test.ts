/**
 * `peft sweep --queue` and `peft worker` against a real Redis (the one `.ci/run` starts; PEFTJS_TEST_REDIS names
 * it): real `peft worker` processes running real `peft train` children on a tiny task. Each test keeps its keys
 * under a prefix of its own and deletes them afterwards.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepCommand } from '../src/sweep/command.js';
import type { SweepRecord } from '../src/sweep/leader.js';
import { ResultsFile } from '../src/sweep/store.js';
import { makeMnistTask, writeTinyWeights } from './cli-fixtures.js';

const REDIS = process.env.PEFTJS_TEST_REDIS;
const runHere = REDIS !== undefined || process.env.CI !== undefined;
if (!runHere) {
  console.warn(
    'sweep-queue tests skipped: PEFTJS_TEST_REDIS is not set (start a redis-server and set it to ' +
      'redis://127.0.0.1:PORT; .ci/run does this, and in CI a missing Redis fails these tests)',
  );
}

const repoRoot = resolve(fileURLToPath(import.meta.url), '../../../..');
const bin = join(repoRoot, 'packages/cli/src/bin.ts');
/** `peft` from source, as a child process. */
const command = {
  executable: process.execPath,
  args: ['--conditions=@peftjs/source', '--import', 'tsx', bin],
};
/** As the local pool with 2 workers runs its jobs: native kernels on one thread (same arithmetic, same numbers). */
const childEnv = { ...process.env, PEFTJS_NATIVE_THREADS: '1' };

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

/** A `peft …` child process whose output is kept. */
interface Child {
  readonly process: ChildProcess;
  readonly output: () => string;
  /** Resolves with the first match of `pattern` in the output (waits up to `seconds`). */
  waitFor(pattern: RegExp, seconds?: number): Promise<RegExpMatchArray>;
  readonly exited: Promise<number | null>;
}

function startPeft(args: string[]): Child {
  const child = spawn(command.executable, [...command.args, ...args], {
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    process: child,
    output: () => output,
    exited,
    async waitFor(pattern, seconds = 120) {
      const deadline = Date.now() + seconds * 1000;
      for (;;) {
        const match = output.match(pattern);
        if (match) return match;
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`no ${pattern} in the output of peft ${args.join(' ')}:\n${output}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
  };
}

const count = (text: string, pattern: RegExp) => [...text.matchAll(pattern)].length;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => Promise<boolean> | boolean, what: string, seconds = 120): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function records(path: string): Promise<SweepRecord[]> {
  return [...((await new ResultsFile(path).read()).values() as Iterable<SweepRecord>)];
}

/** The report's headings, facts and tables, without what names files, machines and times (and wall seconds). */
async function reportBody(path: string): Promise<string> {
  const text = await readFile(path, 'utf8');
  return text
    .split('\n')
    .filter((line) => /^(\||- |#)/.test(line) && !/^- (Sweep `|Machine of this report)/.test(line))
    .map((line) =>
      line.includes('| wall s |') || /\| \d+ \|$/.test(line) ? line.replace(/[^|]*\|$/, '') : line,
    )
    .join('\n');
}

describe.skipIf(!runHere)('peft sweep --queue with peft worker processes (real Redis)', () => {
  let dir: string;
  let weights: string;
  let prefix: string;
  let queue: string;
  const children: Child[] = [];
  const worker = (sweep: string, out: string) => {
    const child = startPeft([
      'worker',
      '--queue',
      queue,
      '--sweep',
      sweep,
      '--out',
      out,
      '--stall-seconds',
      '3',
    ]);
    children.push(child);
    return child;
  };

  /** A sweep file over the tiny MNIST task; `extra` lines go after `base:`'s own. */
  async function sweepFile(name: string, lines: string[]): Promise<string> {
    const path = join(dir, `${name}.yaml`);
    await writeFile(
      path,
      [
        `name: ${name}`,
        'base:',
        '  backend: wasm',
        `  model: { weights: ${weights} }`,
        `  data: { format: vtab, root: ${join(dir, 'vtab')}, numClasses: 10 }`,
        ...lines,
        '',
      ].join('\n'),
    );
    return path;
  }

  beforeAll(async () => {
    if (REDIS === undefined) {
      throw new Error(
        'PEFTJS_TEST_REDIS is not set: .ci/run starts a redis-server for these tests and sets it',
      );
    }
    dir = await mkdtemp(join(tmpdir(), 'peftjs-sweep-queue-'));
    await makeMnistTask(join(dir, 'vtab'));
    weights = await writeTinyWeights(dir);
    prefix = `peft-test-${randomBytes(4).toString('hex')}`;
    queue = `${REDIS.replace(/\/$/, '')}/0?prefix=${prefix}`;
  });

  afterAll(async () => {
    for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL');
    if (REDIS !== undefined && prefix) {
      const redis = new Redis(REDIS, { lazyConnect: true });
      await redis.connect();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('8 jobs over 2 workers give the same records and tables as the local pool; a rerun runs nothing', async () => {
    const common = [
      '  train: { epochs: 2, batchSize: 10, warmupEpochs: 0, evalEvery: 1, checkpointEvery: 1 }',
      'axes: { tasks: [mnist], seeds: [1, 2] }',
      'methods:',
      '  linear: { config: { method: { name: linear } } }',
      '  vpt: { config: { method: { name: vpt, options: { mode: deep, tokens: 2 } } } }',
      'protocol: { name: vtab, grid: { train.lr: [0.001, 0.01] } }',
    ];
    const local = await sweepFile('toy', [...common, `report: { out: ${join(dir, 'local.md')} }`]);
    const err = sink();
    expect(
      await sweepCommand({ file: local, out: join(dir, 'local'), workers: 2, command }, sink(), err),
    ).toBe(0);
    const localRecords = await records(join(dir, 'local', 'results.jsonl'));
    expect(localRecords, err.text()).toHaveLength(8);

    const queued = join(dir, 'queued.yaml');
    await writeFile(
      queued,
      (await readFile(local, 'utf8')).replace(join(dir, 'local.md'), join(dir, 'queued.md')),
    );
    const workers = [worker('toy', join(dir, 'w')), worker('toy', join(dir, 'w'))];
    await Promise.all(workers.map((w) => w.waitFor(/serving sweep "toy"/)));
    const leaderErr = sink();
    const failed = await sweepCommand(
      { file: queued, out: join(dir, 'queued'), queue, returnAdapter: true },
      sink(),
      leaderErr,
    );
    expect(failed, leaderErr.text()).toBe(0);
    const queuedRecords = await records(join(dir, 'queued', 'results.jsonl'));
    expect(queuedRecords).toHaveLength(8);
    // Both workers ran jobs, each job was taken once and finished once.
    const took = workers.map((w) => count(w.output(), /took [0-9a-f]{24}/g));
    expect(
      took.every((n) => n > 0),
      workers.map((w) => w.output()).join('\n'),
    ).toBe(true);
    expect(took[0]! + took[1]!).toBe(8);
    // Same jobs, same numbers, same tables.
    const byId = new Map(localRecords.map((r) => [r.id, r]));
    for (const r of queuedRecords) {
      expect(r.status).toBe('done');
      expect(r.metrics).toEqual(byId.get(r.id)?.metrics);
      expect(r.worker).toMatch(/:\d+$/);
    }
    expect(await reportBody(join(dir, 'queued.md'))).toBe(await reportBody(join(dir, 'local.md')));
    // The leader saw per-epoch progress, and the adapters came back into the leader's run folders.
    expect(leaderErr.text()).toMatch(/seed 1 select: epoch 2\/2 loss [\d.]+ on [^ ]+:\d+/);
    for (const r of queuedRecords) {
      expect(existsSync(join(dir, 'queued', 'runs', r.id, 'adapter', 'adapter_config.json'))).toBe(true);
    }
    // A rerun of the finished sweep adds nothing to the queue and records nothing.
    const again = sink();
    expect(await sweepCommand({ file: queued, out: join(dir, 'queued'), queue }, sink(), again)).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    expect(workers.map((w) => count(w.output(), /took /g))).toEqual(took);
    expect(await records(join(dir, 'queued', 'results.jsonl'))).toHaveLength(8);
    for (const w of workers) w.process.kill('SIGTERM');
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);
  });

  it('a worker killed with SIGKILL mid-job: its run stops, another worker reruns the job; a crashed run is retried; each job completes once', async () => {
    const file = await sweepFile('kill', [
      '  train: { protocol: refit, epochs: 2, batchSize: 10, warmupEpochs: 0, evalEvery: 1, checkpointEvery: 1 }',
      'axes: { tasks: [mnist], seeds: [1, 2] }',
      'methods:',
      '  linear: { config: { method: { name: linear } }, grid: { train.lr: [0.001, 0.01] } }',
    ]);
    const out = join(dir, 'kill-workers');
    const [victim, survivor] = [worker('kill', out), worker('kill', out)] as [Child, Child];
    await Promise.all([victim, survivor].map((w) => w.waitFor(/serving sweep "kill"/)));
    const err = sink();
    const leader = sweepCommand({ file, out: join(dir, 'kill'), queue }, sink(), err);
    /** The pid of the `peft train` running job `id` (it holds the run folder's lock). */
    const trainPid = async (id: string) => {
      const lock = join(out, 'runs', id, '.peftjs-lock');
      await until(() => existsSync(lock), `the run of ${id} to start`);
      return (JSON.parse(await readFile(lock, 'utf8')) as { pid: number }).pid;
    };
    const [, id] = (await victim.waitFor(/took ([0-9a-f]{24})/)) as [string, string];
    const orphan = await trainPid(id);
    victim.process.kill('SIGKILL');
    // A crash of the run itself (not of its worker): the survivor's first run is killed from outside.
    const [, crashed] = (await survivor.waitFor(/took ([0-9a-f]{24})/)) as [string, string];
    process.kill(await trainPid(crashed), 'SIGKILL');
    // The orphaned peft train notices its worker is gone and stops.
    await until(() => !alive(orphan), "the killed worker's run to stop", 15);
    expect(await leader, err.text()).toBe(0);
    const recs = await records(join(dir, 'kill', 'results.jsonl'));
    expect(recs).toHaveLength(4);
    expect(recs.every((r) => r.status === 'done' && r.metrics?.testTop1 !== undefined)).toBe(true);
    expect(survivor.output()).toMatch(new RegExp(`took ${id} .*\\(start 2\\)`));
    expect(err.text()).toMatch(/its worker stopped answering; the job goes to another worker/);
    // The crashed run was retried by BullMQ (after its backoff) and finished on the second try.
    expect(survivor.output()).toMatch(
      new RegExp(`${crashed} failed \\(crash; BullMQ retries it\\): killed by SIGKILL`),
    );
    expect(survivor.output()).toMatch(new RegExp(`took ${crashed} .*\\(start 2\\)`));
    const done = [...survivor.output().matchAll(/done ([0-9a-f]{24})/g)].map((m) => m[1]);
    expect(victim.output()).not.toMatch(/done /);
    expect(done.sort()).toEqual(recs.map((r) => r.id).sort());
    expect((await readFile(join(dir, 'kill', 'results.jsonl'), 'utf8')).trim().split('\n')).toHaveLength(4);
    survivor.process.kill('SIGTERM');
    expect(await survivor.exited).toBe(0);
  });

  it('a leader killed and restarted collects what finished meanwhile; a failing job fails once, with its error; a rerun runs nothing', async () => {
    // A copy of the task whose train800val200 list names an image that is not there.
    const broken = join(dir, 'broken-vtab');
    await cp(join(dir, 'vtab'), broken, { recursive: true });
    await writeFile(
      join(broken, 'mnist', 'train800val200.txt'),
      `${await readFile(join(broken, 'mnist', 'train800val200.txt'), 'utf8')}images/missing.png 3\n`,
    );
    const file = await sweepFile('restart', [
      '  train: { protocol: refit, epochs: 1, batchSize: 10, warmupEpochs: 0, evalEvery: 1 }',
      'axes: { tasks: [mnist], seeds: [1, 2, 3] }',
      'methods:',
      '  linear: { config: { method: { name: linear } } }',
      `  broken: { config: { method: { name: linear }, data: { root: ${broken} } } }`,
    ]);
    const out = join(dir, 'restart');
    const results = join(out, 'results.jsonl');
    const w = worker('restart', join(dir, 'restart-worker'));
    await w.waitFor(/serving sweep "restart"/);
    const first = startPeft(['sweep', '--config', file, '--out', out, '--queue', queue]);
    children.push(first);
    await until(async () => (await records(results)).length >= 1, 'a first record');
    first.process.kill('SIGKILL');
    await first.exited;
    const recorded = (await records(results)).length;
    // The worker goes on; wait until it has finished a job the dead leader did not record.
    await until(
      () => count(w.output(), /(done|failed) [0-9a-f]{24}/g) > recorded,
      'a job finished while no leader runs',
    );
    const err = sink();
    await sweepCommand({ file, out, queue }, sink(), err);
    expect(err.text()).toMatch(/waiting for the previous leader's lease to expire/);
    const recs = await records(results);
    expect(recs).toHaveLength(6);
    expect((await readFile(results, 'utf8')).trim().split('\n')).toHaveLength(6);
    // Every job ran once: none twice after the restart, the failing ones not retried.
    const took = [...w.output().matchAll(/took ([0-9a-f]{24})/g)].map((m) => m[1]);
    expect(took.sort()).toEqual(recs.map((r) => r.id).sort());
    const failed = recs.filter((r) => r.status === 'failed');
    expect(failed.map((r) => r.row)).toEqual(['broken', 'broken', 'broken']);
    for (const r of failed) expect(r.error).toMatch(/^exit 1: .*missing\.png/);
    expect(recs.filter((r) => r.status === 'done').map((r) => r.row)).toEqual(['linear', 'linear', 'linear']);
    const report = await readFile(join(out, 'report.md'), 'utf8');
    expect(report).toMatch(/failed: broken on mnist, seed 1 \(run\): exit 1: .*missing\.png/);
    // The finished sweep, run again, puts nothing on the queue.
    expect(await sweepCommand({ file, out, queue }, sink(), sink())).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    expect(count(w.output(), /took /g)).toBe(6);
    w.process.kill('SIGTERM');
    expect(await w.exited).toBe(0);
  });
});
