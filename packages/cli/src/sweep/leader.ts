import { hostname } from 'node:os';
import type { JobOutcome, JobRunner } from './local.js';
import { type Job, type JobRecord, type Resolver, type SweepPlan, planSweep } from './plan.js';
import type { SweepSpec } from './spec.js';
import type { ResultsFile } from './store.js';

/** A finished job as the results file stores it: the plan's view plus what the run measured. */
export interface SweepRecord extends JobRecord {
  /** The resolved config the job ran. */
  readonly config: Job['resolved'];
  /** Fingerprint of the base the run started from (done jobs). */
  readonly baseFingerprint?: string;
  /** Backend and kernels. */
  readonly backend?: string;
  /** Trainable parameters without the head. */
  readonly parameters?: number;
  /** Wall seconds of the run. */
  readonly seconds: number;
  /** Who ran it. */
  readonly worker: string;
  /** When it finished (ISO time). */
  readonly finishedAt: string;
}

/** Progress of a sweep, reported after every change. */
export interface SweepProgress {
  readonly done: number;
  readonly failed: number;
  readonly running: number;
  /** Jobs known and not finished, plus refits waiting for a selection. */
  readonly remaining: number;
  /** Estimated seconds left (mean job time × remaining ÷ capacity), null before the first job finishes. */
  readonly etaSeconds: number | null;
  /** The job that just finished, if any. */
  readonly finished?: SweepRecord;
}

/** Options of `runSweep`. */
export interface RunSweepOptions {
  readonly runner: JobRunner;
  readonly results: ResultsFile;
  readonly resolve: Resolver;
  readonly onProgress?: (progress: SweepProgress) => void;
  /** Stops starting new jobs (jobs in flight are stopped by closing the runner). */
  readonly signal?: AbortSignal;
}

export function recordOf(job: Job, outcome: JobOutcome): SweepRecord {
  const common = {
    id: job.id,
    row: job.row,
    phase: job.phase,
    task: job.task,
    seed: job.seed,
    variant: job.variant,
    point: job.point,
    config: job.resolved,
    seconds: outcome.seconds,
    worker: outcome.worker,
    finishedAt: new Date().toISOString(),
  };
  if (outcome.status === 'failed') return { ...common, status: 'failed', error: outcome.error };
  const r = outcome.results;
  return {
    ...common,
    status: 'done',
    metrics: {
      ...(r.test ? { testTop1: r.test.top1 } : {}),
      ...(r.validation
        ? { valTop1: r.validation.top1 ?? Number.NaN, bestEpoch: r.validation.bestEpoch }
        : {}),
    },
    ...(r.base ? { baseFingerprint: r.base.fingerprint } : {}),
    ...(r.backend ? { backend: r.backend.kernels ?? r.backend.name } : {}),
    ...(r.parameters ? { parameters: r.parameters.trainableWithoutHead } : {}),
  };
}

function progressOf(
  plan: SweepPlan,
  inFlight: number,
  runner: JobRunner,
  seconds: number[],
  finished?: SweepRecord,
): SweepProgress {
  const running = runner.running ? runner.running() : inFlight;
  // Jobs run `capacity` at once on a pool; behind a queue, as many as the workers are running now.
  const capacity = runner.running ? running : runner.capacity;
  const known = plan.jobs.map((j) => plan.records.get(j.id));
  const done = known.filter((r) => r?.status === 'done').length;
  const failed = known.filter((r) => r?.status === 'failed').length;
  const remaining = plan.jobs.length - done - failed + plan.pending;
  const mean = seconds.length > 0 ? seconds.reduce((a, b) => a + b, 0) / seconds.length : null;
  return {
    done,
    failed,
    running,
    remaining,
    etaSeconds: mean === null ? null : (mean * remaining) / Math.max(1, capacity),
    ...(finished ? { finished } : {}),
  };
}

/**
 * Runs a sweep to the end from its results file: plans, starts ready jobs up to the runner's capacity, records
 * each outcome (once: a job id already recorded is never started again), re-plans. A failed job is recorded with
 * its error and not retried; the selections that needed it are reported as blocked. Returns the final plan.
 */
export async function runSweep(spec: SweepSpec, options: RunSweepOptions): Promise<SweepPlan> {
  const { runner, results, resolve } = options;
  const records = new Map<string, JobRecord>(await results.read());
  const inFlight = new Map<string, Promise<{ job: Job; outcome: JobOutcome }>>();
  const seconds: number[] = [];
  let plan = await planSweep(spec, records, resolve);
  options.onProgress?.(progressOf(plan, 0, runner, seconds));
  for (;;) {
    if (!options.signal?.aborted) {
      for (const job of plan.ready) {
        if (inFlight.size >= runner.capacity) break;
        if (inFlight.has(job.id)) continue;
        inFlight.set(
          job.id,
          runner.run(job).then(
            (outcome) => ({ job, outcome }),
            (error: unknown) => ({
              job,
              outcome: {
                status: 'failed',
                error: String((error as Error)?.message ?? error),
                seconds: 0,
                worker: hostname(),
              },
            }),
          ),
        );
      }
    }
    if (inFlight.size === 0) break;
    const { job, outcome } = await Promise.race(inFlight.values());
    inFlight.delete(job.id);
    // A job stopped because the sweep was stopped did not fail: leave it unrecorded, to run again next time.
    if (options.signal?.aborted && outcome.status === 'failed') continue;
    // One record per job id: an outcome for a job already recorded is dropped.
    if (records.has(job.id)) continue;
    const record = recordOf(job, outcome);
    await results.append(record);
    records.set(job.id, record);
    await runner.recorded?.(job.id);
    if (outcome.status === 'done') seconds.push(outcome.seconds);
    plan = await planSweep(spec, records, resolve);
    options.onProgress?.(progressOf(plan, inFlight.size, runner, seconds, record));
  }
  return plan;
}
