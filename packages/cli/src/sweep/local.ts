import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Job } from './plan.js';
import type { JsonMap } from './spec.js';

/**
 * How a sweep's jobs run. The leader starts at most `capacity` jobs at once and gets each one's outcome; where
 * they run — child processes here, workers on other machines behind a queue — is the runner's business.
 */
export interface JobRunner {
  /** Most jobs in flight at once. */
  readonly capacity: number;
  /** Runs one job to completion; resolves with what its run folder reports, or with the failure. */
  run(job: Job): Promise<JobOutcome>;
  /** Stops every job in flight and releases resources. */
  close(): Promise<void>;
  /**
   * Jobs actually running now, where that differs from the jobs in flight (a queue's jobs can wait for a
   * worker); the leader's ETA divides by it. Without it, every job in flight counts as running.
   */
  running?(): number;
  /** Called once the leader has recorded a job's outcome (a queue then forgets the job). */
  recorded?(jobId: string): Promise<void>;
  /** What happens to jobs in flight when the sweep is stopped (printed then). */
  readonly stopNote?: string;
}

/** The end of one job. */
export type JobOutcome =
  | {
      readonly status: 'done';
      /** The run's `results.json`. */
      readonly results: RunResults;
      /** Wall time of the run in seconds. */
      readonly seconds: number;
      /** Who ran it (host name and worker). */
      readonly worker: string;
    }
  | {
      readonly status: 'failed';
      /** The run's own error message (the last lines it printed). */
      readonly error: string;
      readonly seconds: number;
      readonly worker: string;
      /**
       * How the `peft train` process ended, when it ran: an exit code (1 or 2: the run itself failed, running it
       * again fails again) or the signal that killed it (a crash or a stop, worth another try).
       */
      readonly exit?: { readonly code: number | null; readonly signal: string | null };
    };

/** What a sweep reads from a run folder's `results.json`. */
export interface RunResults {
  /** Test metrics (refit and plain runs). */
  readonly test?: { readonly top1: number };
  /** What the run chose on validation (select and vtab runs): best top-1 and its 0-based epoch. */
  readonly validation?: { readonly top1: number | null; readonly bestEpoch: number };
  /** Fingerprint of the base the run started from, checked before training. */
  readonly base?: { readonly fingerprint: string };
  /** Backend and kernels. */
  readonly backend?: { readonly name: string; readonly kernels?: string };
  /** Trainable parameters without the head. */
  readonly parameters?: { readonly trainableWithoutHead: number };
}

/** How to start the `peft` command in a child process: the interpreter and its arguments before the command. */
export interface PeftCommand {
  readonly executable: string;
  readonly args: readonly string[];
}

/**
 * The `peft` binary of this package, started like this process (same Node and flags), whatever started the
 * leader: from source (`src/bin.ts` under tsx) or built (`dist/bin.js`, beside the bundle this code is in).
 */
export function selfCommand(): PeftCommand {
  const fromSource = import.meta.url.endsWith('.ts');
  const bin = fileURLToPath(new URL(fromSource ? '../bin.ts' : './bin.js', import.meta.url));
  return { executable: process.execPath, args: [...process.execArgv, bin] };
}

/** Runs `peft train` for one job in `runsDir/<id>` with its config; the shared part of every runner. */
export async function runJobProcess(
  job: Pick<Job, 'id' | 'resolved'>,
  runsDir: string,
  options: { command: PeftCommand; env?: NodeJS.ProcessEnv; signal?: AbortSignal; worker: string },
): Promise<JobOutcome> {
  const dir = join(runsDir, job.id);
  await mkdir(dir, { recursive: true });
  const configPath = join(dir, 'job.json');
  // A job that was interrupted continues from its run folder's checkpoint (resume does not change what it computes).
  const train = { ...(job.resolved.train as JsonMap), resume: true };
  await writeFile(configPath, `${JSON.stringify({ ...job.resolved, out: dir, train }, null, 2)}\n`);
  const started = performance.now();
  const log = createWriteStream(join(dir, 'output.log'));
  let tail = '';
  const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
    const child = spawn(
      options.command.executable,
      [...options.command.args, 'train', '--config', configPath],
      { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const onAbort = () => child.kill('SIGTERM');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const keep = (chunk: Buffer) => {
      log.write(chunk);
      tail = (tail + chunk.toString('utf8')).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      options.signal?.removeEventListener('abort', onAbort);
      resolve({ code, signal });
    });
  });
  await new Promise<void>((resolve) => log.end(resolve));
  const seconds = (performance.now() - started) / 1000;
  if (exit.code !== 0) {
    const lines = tail.trim().split('\n').slice(-5).join(' | ');
    const how = exit.signal ? `killed by ${exit.signal}` : `exit ${exit.code}`;
    return { status: 'failed', error: `${how}: ${lines}`, seconds, worker: options.worker, exit };
  }
  const results = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as RunResults;
  return { status: 'done', results, seconds, worker: options.worker };
}

/**
 * The embedded default: jobs run as child processes on this machine, `workers` at a time. With more than one
 * worker each job's native kernels use one thread, so the workers do not fight over cores.
 */
export class LocalRunner implements JobRunner {
  readonly capacity: number;
  private readonly controller = new AbortController();

  constructor(
    private readonly runsDir: string,
    workers: number,
    private readonly command: PeftCommand = selfCommand(),
  ) {
    this.capacity = workers;
  }

  run(job: Job): Promise<JobOutcome> {
    const env = this.capacity > 1 ? { PEFTJS_NATIVE_THREADS: '1' } : {};
    return runJobProcess(job, this.runsDir, {
      command: this.command,
      env,
      signal: this.controller.signal,
      worker: 'local',
    });
  }

  async close(): Promise<void> {
    this.controller.abort();
  }
}
