import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SweepRecord, runSweep } from './leader.js';
import type { JobOutcome, JobRunner } from './local.js';
import { type Job, planSweep } from './plan.js';
import { buildReport, reportMarkdown } from './report.js';
import { type JsonMap, SWEEP_FILE, getPath, jobId } from './spec.js';
import { ResultsFile } from './store.js';

const resolve = async (config: JsonMap): Promise<JsonMap> => ({ backend: 'auto', ...config });

/** A sweep of 2 tasks × 2 methods (one with an lr × lambda grid, one inheriting its lr) × 2 seeds. */
const spec = SWEEP_FILE.parse({
  name: 'toy',
  base: { model: { weights: 'w.safetensors' }, train: { epochs: 5 } },
  axes: { tasks: ['a', 'b'], seeds: [1, 2] },
  methods: {
    ship: {
      config: { method: { name: 'ship' } },
      grid: { 'train.lr': [0.001, 0.01], 'method.options.lambda': [0.1, 0.5] },
    },
    'ship-l07': {
      config: { method: { name: 'ship', options: { lambda: 0.7 } } },
      inherit: { from: 'ship', paths: ['train.lr'] },
    },
    linear: { config: { method: { name: 'linear' } } },
  },
  protocol: { name: 'vtab', grid: { 'train.lr': [0.001, 0.01] } },
  report: { title: 'Toy', groups: { g: ['a', 'b'] }, headline: ['ship', 'linear'] },
});

/**
 * Fake runs: validation and test accuracy are functions of the config; every run starts from base "sha256:base";
 * configs in `failing` fail. Counts every start per job id.
 */
class FakeRunner implements JobRunner {
  readonly capacity = 2;
  readonly starts = new Map<string, number>();
  constructor(private readonly failing: (job: Job) => boolean = () => false) {}
  async run(job: Job): Promise<JobOutcome> {
    this.starts.set(job.id, (this.starts.get(job.id) ?? 0) + 1);
    await new Promise((r) => setTimeout(r, 1));
    if (this.failing(job))
      return { status: 'failed', error: 'bad data at list.txt:3', seconds: 1, worker: 'fake' };
    const lr = Number(getPath(job.resolved, 'train.lr'));
    const lambda = Number(getPath(job.resolved, 'method.options.lambda') ?? 0);
    const score = 0.5 + (lr === 0.01 ? 0.2 : 0) + lambda / 10 + (job.task === 'b' ? 0.05 : 0);
    const protocol = getPath(job.resolved, 'train.protocol');
    return {
      status: 'done',
      results: {
        ...(protocol === 'select'
          ? { validation: { top1: score, bestEpoch: 3 } }
          : { test: { top1: score - 0.01 * Number(job.seed) } }),
        base: { fingerprint: 'sha256:base' },
        backend: { name: 'wasm', kernels: 'wasm + native' },
        parameters: { trainableWithoutHead: 100 },
      },
      seconds: 2,
      worker: 'fake',
    };
  }
  async close(): Promise<void> {}
}

describe('sweeps', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'peftjs-sweep-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses unknown keys in a sweep file', () => {
    const bad = SWEEP_FILE.safeParse({ name: 'x', methods: { a: { confg: {} } } });
    expect(bad.success).toBe(false);
  });

  it('plans selection first: seed-1 candidates of the grid, inherited rows wait for their parent', async () => {
    const plan = await planSweep(spec, new Map(), resolve);
    const selects = plan.jobs.filter((j) => j.phase === 'select');
    // ship: 2 tasks × 4 candidates; linear: 2 tasks × 2 lrs; ship-l07 waits for ship's choice.
    expect(selects.filter((j) => j.row === 'ship')).toHaveLength(8);
    expect(selects.filter((j) => j.row === 'linear')).toHaveLength(4);
    expect(selects.filter((j) => j.row === 'ship-l07')).toHaveLength(0);
    expect(selects.every((j) => j.seed === 1 && getPath(j.resolved, 'train.protocol') === 'select')).toBe(
      true,
    );
    expect(plan.jobs.filter((j) => j.phase === 'refit')).toHaveLength(0);
    expect(new Set(plan.jobs.map((j) => j.id)).size).toBe(plan.jobs.length);
    expect(plan.jobs[0]?.id).toBe(jobId(plan.jobs[0]?.resolved as JsonMap));
  });

  it('runs every job exactly once, chooses on validation, refits every seed, and a rerun runs nothing', async () => {
    const results = new ResultsFile(join(dir, 'full.jsonl'));
    const runner = new FakeRunner();
    const plan = await runSweep(spec, { runner, results, resolve });
    expect(plan.ready).toHaveLength(0);
    expect([...runner.starts.values()].every((n) => n === 1)).toBe(true);
    const shipA = plan.choices.find((c) => c.row === 'ship' && c.task === 'a');
    expect(shipA?.point).toEqual({ 'train.lr': 0.01, 'method.options.lambda': 0.5 });
    expect(shipA?.epochs).toBe(4);
    const l07 = plan.choices.find((c) => c.row === 'ship-l07' && c.task === 'a');
    expect(l07?.point).toEqual({ 'train.lr': 0.01 });
    const refits = plan.jobs.filter((j) => j.phase === 'refit');
    expect(refits).toHaveLength(3 * 2 * 2);
    expect(refits.every((j) => getPath(j.resolved, 'train.stopAfterEpochs') === 4)).toBe(true);
    // A finished sweep, run again, starts nothing.
    const again = new FakeRunner();
    await runSweep(spec, { runner: again, results, resolve });
    expect(again.starts.size).toBe(0);
    const records = (await results.read()) as Map<string, SweepRecord>;
    expect(records.size).toBe(plan.jobs.length);
    const report = buildReport(spec, plan, 'full.jsonl');
    const md = reportMarkdown(spec, report, []);
    // ship on a: test = 0.75 − 0.01·seed over seeds 1 and 2.
    expect(md).toMatch(/\| ship \| 2 \| 73\.5 ± 0\.5 \| 78\.5 ± 0\.5 \| 76\.0 \| 76\.0 \|/);
    expect(md).toMatch(/Headline: ship 76\.0 ± 0\.5 vs linear 71\.0 ± 0\.5 group mean/);
    expect(md).toMatch(/Per seed \(group mean\): ship 76\.5 \/ 75\.5; linear 71\.5 \/ 70\.5/);
    expect(md).toMatch(/\| ship \| lr 0\.01, lambda 0\.5, 4 ep \(val 75\.0\)/);
  });

  it('a restarted leader continues from the results file without repeating a job', async () => {
    const results = new ResultsFile(join(dir, 'restart.jsonl'));
    const controller = new AbortController();
    const first = new FakeRunner();
    let finished = 0;
    await runSweep(spec, {
      runner: first,
      results,
      resolve,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.finished && ++finished === 5) controller.abort();
      },
    });
    const recorded = await results.read();
    expect(recorded.size).toBeGreaterThanOrEqual(5);
    const second = new FakeRunner();
    const plan = await runSweep(spec, { runner: second, results, resolve });
    expect(plan.ready).toHaveLength(0);
    for (const id of second.starts.keys()) expect(recorded.has(id)).toBe(false);
    expect((await results.read()).size).toBe(plan.jobs.length);
  });

  it('a failing job is recorded once with its error, blocks what needs it, and is reported', async () => {
    const results = new ResultsFile(join(dir, 'failing.jsonl'));
    const runner = new FakeRunner((job) => job.row === 'linear' && job.task === 'b');
    const plan = await runSweep(spec, { runner, results, resolve });
    expect([...runner.starts.values()].every((n) => n === 1)).toBe(true);
    expect(plan.blocked.map((b) => `${b.row}/${b.task}`)).toEqual(['linear/b']);
    const report = buildReport(spec, plan, 'failing.jsonl');
    expect(reportMarkdown(spec, report, [])).toMatch(
      /failed: linear on b, seed 1 \(select\): bad data at list\.txt:3/,
    );
  });

  it('the report refuses a record without the base fingerprint or with another one', async () => {
    const results = new ResultsFile(join(dir, 'full.jsonl'));
    const records = (await results.read()) as Map<string, SweepRecord>;
    const [id, record] = [...records].find(([, r]) => r.phase === 'refit') as [string, SweepRecord];
    const planWith = (r: SweepRecord) => planSweep(spec, new Map([...records, [id, r]]), resolve);
    const { baseFingerprint: _drop, ...without } = record;
    const withoutPlan = await planWith(without as SweepRecord);
    expect(() => buildReport(spec, withoutPlan, 'r.jsonl')).toThrow(
      /has no base fingerprint; refusing to report it/,
    );
    const other = { ...record, baseFingerprint: 'sha256:other' };
    const otherPlan = await planWith(other);
    expect(() => buildReport(spec, otherPlan, 'r.jsonl')).toThrow(
      /started from base sha256:other, not sha256:base/,
    );
  });

  it('a record from before an option was added still counts, unless the new option is off its default', async () => {
    const results = new ResultsFile(join(dir, 'full.jsonl'));
    const records = (await results.read()) as Map<string, SweepRecord>;
    // The schema gains train.dropLast (default true): the stored configs lack it.
    const withDropLast = (dropLast: boolean) => async (config: JsonMap) => {
      const resolved = await resolve(config);
      const train = { dropLast: true, ...((resolved.train as JsonMap | undefined) ?? {}) };
      if (getPath(config, 'train.dropLast') === undefined) train.dropLast = true;
      return { ...resolved, train: dropLast ? train : { ...train, dropLast: false } };
    };
    const same = await planSweep(spec, records, withDropLast(true));
    expect(same.ready).toHaveLength(0);
    expect(same.records.size).toBe(records.size);
    const changed = await planSweep(spec, records, async (config) => {
      const resolved = await withDropLast(true)(config);
      // A user now sets it off in the sweep file: other runs, so nothing counts.
      return config.seed !== undefined
        ? { ...resolved, train: { ...(resolved.train as JsonMap), dropLast: false } }
        : resolved;
    });
    expect(changed.records.size).toBe(0);
  });

  it('a record torn by a crash is ignored on reading and cut before the next append', async () => {
    const path = join(dir, 'torn.jsonl');
    const results = new ResultsFile(path);
    const record = {
      id: 'x',
      status: 'done',
      row: 'r',
      phase: 'run',
      task: null,
      seed: 1,
      variant: {},
      point: {},
    } as const;
    await results.append(record);
    await appendFile(path, '{"id":"y","stat');
    expect([...(await results.read()).keys()]).toEqual(['x']);
    await results.append({ ...record, id: 'z' });
    expect([...(await results.read()).keys()]).toEqual(['x', 'z']);
    expect((await readFile(path, 'utf8')).split('\n').filter(Boolean)).toHaveLength(2);
  });
});
