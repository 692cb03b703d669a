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
  job: Job,
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
  const code = await new Promise<number>((resolve, reject) => {
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
    child.on('close', (exit, signal) => {
      options.signal?.removeEventListener('abort', onAbort);
      resolve(exit ?? (signal ? 128 : 1));
    });
  });
  await new Promise<void>((resolve) => log.end(resolve));
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) {
    const lines = tail.trim().split('\n').slice(-5).join(' | ');
    return { status: 'failed', error: `exit ${code}: ${lines}`, seconds, worker: options.worker };
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
