import { open, readFile, readdir, stat } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CHECKPOINT_JSON } from '@peftjs/train';
import { type Job as BullJob, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { UsageError } from '../errors.js';
import type { Output } from '../progress.js';
import { type PeftCommand, type RunResults, runJobProcess, selfCommand } from './local.js';
import { connectRedis } from './queue.js';
import {
  MAX_ADAPTER_BYTES,
  MAX_STALLS,
  QUEUED_JOB,
  type QueueAddress,
  type QueuedProgress,
  type QueuedResult,
  failedForGood,
  parseQueueAddress,
} from './queue-protocol.js';
import { type JsonMap, getPath, jobId, setPaths } from './spec.js';

/**
 * `peft worker`: takes a sweep's jobs from its BullMQ queue and runs each as a `peft train` child process in
 * `<out>/runs/<id>` (continuing from the run's checkpoint when an earlier try left one there), reports progress
 * per epoch and sends back the run's results (and its adapter files when the leader asks). A run that fails
 * (exit 1 or 2) fails its job for good; a run that crashes (killed, or an unexpected exit) is retried by BullMQ with
 * backoff; a worker that dies leaves its job to be found stalled and taken by another worker.
 */

/** Options of `runQueueWorker`. */
export interface QueueWorkerOptions {
  readonly address: QueueAddress;
  /** The sweep whose queue to serve. */
  readonly sweep: string;
  /** Folder of the run folders (`<out>/runs/<id>`). */
  readonly out: string;
  /** Jobs at once (each a `peft train` process). */
  readonly workers: number;
  /** Seconds without a sign of life before a job counts as stalled (BullMQ's lock duration and stall check). */
  readonly stallSeconds: number;
  /** How to start `peft` (default: this process's own command). */
  readonly command?: PeftCommand;
  /** One line per job taken, finished, failed or given back. */
  readonly log: (line: string) => void;
}

/** A running worker: `stop` gives its jobs back to the queue and closes it. */
export interface QueueWorker {
  readonly name: string;
  /** Resolves once the worker has stopped (after `stop`). */
  readonly closed: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Preloaded into each `peft train` child: the child stops when its worker dies (its parent changes), so a worker
 * killed with SIGKILL leaves no run behind holding the run folder.
 */
const STOP_WITH_PARENT = `data:text/javascript,${encodeURIComponent(
  "const p=process.ppid;setInterval(()=>{if(process.ppid!==p)process.kill(process.pid,'SIGTERM')},1000).unref();",
)}`;

/** Starts serving the sweep's queue. */
export async function runQueueWorker(options: QueueWorkerOptions): Promise<QueueWorker> {
  const name = `${hostname()}:${process.pid}`;
  const base = options.command ?? selfCommand();
  const command: PeftCommand = {
    executable: base.executable,
    args: ['--import', STOP_WITH_PARENT, ...base.args],
  };
  const runsDir = join(options.out, 'runs');
  const env: NodeJS.ProcessEnv = options.workers > 1 ? { PEFTJS_NATIVE_THREADS: '1' } : {};
  let stopping = false;
  const processor = async (bull: BullJob, token?: string, signal?: AbortSignal): Promise<QueuedResult> => {
    const payload = QUEUED_JOB.safeParse(bull.data);
    if (!payload.success) {
      throw new UnrecoverableError(`job ${bull.id} is not a sweep job: ${payload.error.issues[0]?.message}`);
    }
    const { config, label, returnAdapter } = payload.data;
    const id = bull.id as string;
    if (jobId(config as JsonMap) !== id) {
      throw new UnrecoverableError(`job ${id}: its config does not hash to its id; refusing to run it`);
    }
    const tries = bull.attemptsStarted > 1 ? ` (start ${bull.attemptsStarted})` : '';
    options.log(`took ${id} ${label}${tries}`);
    await bull.updateProgress({ worker: name } satisfies QueuedProgress);
    const dir = join(runsDir, id);
    const resolved = await resumeIfCheckpointed(config as JsonMap, dir);
    if (resolved !== config) options.log(`${id}: continuing from the checkpoint in ${dir}`);
    const watch = watchEpochs(dir, config as JsonMap, (p) => {
      bull.updateProgress({ worker: name, ...p } satisfies QueuedProgress).catch(() => {});
    });
    let outcome: Awaited<ReturnType<typeof runJobProcess>>;
    try {
      outcome = await runJobProcess({ id, resolved }, runsDir, {
        command,
        env,
        ...(signal ? { signal } : {}),
        worker: name,
      });
    } finally {
      watch.stop();
    }
    if (stopping) {
      options.log(`${id}: given back to the queue (worker stopping)`);
      await bull.moveToWait(token);
      throw new WaitingError();
    }
    if (outcome.status === 'failed') {
      const forGood = failedForGood(outcome.exit);
      options.log(`${id} failed${forGood ? '' : ' (crash; BullMQ retries it)'}: ${outcome.error}`);
      throw forGood ? new UnrecoverableError(outcome.error) : new Error(outcome.error);
    }
    options.log(`done ${id} in ${outcome.seconds.toFixed(1)} s`);
    return {
      results: pickResults(outcome.results),
      seconds: outcome.seconds,
      worker: name,
      ...(returnAdapter ? { adapter: await readAdapter(join(dir, 'adapter')) } : {}),
    };
  };
  const connection = await connectRedis(options.address, `peft-worker:${name}`, options.log);
  options.log(
    `worker ${name} serving sweep "${options.sweep}" on ${options.address.display}, ${options.workers} job(s) at once`,
  );
  const worker = new Worker(options.sweep, processor, {
    connection,
    prefix: options.address.prefix,
    name,
    concurrency: options.workers,
    lockDuration: options.stallSeconds * 1000,
    stalledInterval: options.stallSeconds * 1000,
    maxStalledCount: MAX_STALLS,
  });
  worker.on('error', (error) => options.log(`worker: ${error.message}`));
  await worker.waitUntilReady();
  let resolveClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  return {
    name,
    closed,
    stop: async () => {
      if (stopping) return closed;
      stopping = true;
      worker.cancelAllJobs('worker stopping');
      await worker.close();
      await quit(connection);
      resolveClosed();
    },
  };
}

async function quit(connection: Redis): Promise<void> {
  await connection.quit().catch(() => connection.disconnect());
}

/** The config with `train.resume` set when an earlier try left a checkpoint in the run folder. */
async function resumeIfCheckpointed(config: JsonMap, dir: string): Promise<JsonMap> {
  const protocol = getPath(config, 'train.protocol');
  if (protocol === 'vtab' || !existsSync(join(dir, 'checkpoints', CHECKPOINT_JSON))) return config;
  return setPaths(config, { 'train.resume': true });
}

/** Follows the run's log.jsonl and reports each finished epoch. */
function watchEpochs(
  dir: string,
  config: JsonMap,
  report: (p: { epoch: number; epochs: number; loss: number }) => void,
): { stop: () => void } {
  const epochs = Number(getPath(config, 'train.stopAfterEpochs') ?? getPath(config, 'train.epochs') ?? 0);
  // Epochs an earlier try logged (a resumed run appends to the same log) are not reported again.
  let offset = existsSync(join(dir, 'log.jsonl')) ? statSync(join(dir, 'log.jsonl')).size : 0;
  let partial = '';
  let busy = false;
  const look = async () => {
    if (busy) return;
    busy = true;
    try {
      const path = join(dir, 'log.jsonl');
      const size = (await stat(path)).size;
      if (size < offset) offset = 0;
      if (size === offset) return;
      const handle = await open(path, 'r');
      const chunk = Buffer.alloc(size - offset);
      await handle.read(chunk, 0, chunk.length, offset);
      await handle.close();
      offset = size;
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const event = JSON.parse(line) as { type?: string; epoch?: number; loss?: number };
        if (event.type === 'epoch-end' && typeof event.epoch === 'number') {
          report({ epoch: event.epoch + 1, epochs, loss: Number(event.loss) });
        }
      }
    } catch {
      // No log yet, or a line being written: look again next time.
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void look(), 2000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

function pickResults(r: RunResults): QueuedResult['results'] {
  return {
    ...(r.test ? { test: { top1: r.test.top1 } } : {}),
    ...(r.validation ? { validation: { top1: r.validation.top1, bestEpoch: r.validation.bestEpoch } } : {}),
    ...(r.base ? { base: { fingerprint: r.base.fingerprint } } : {}),
    ...(r.backend
      ? { backend: { name: r.backend.name, ...(r.backend.kernels ? { kernels: r.backend.kernels } : {}) } }
      : {}),
    ...(r.parameters ? { parameters: { trainableWithoutHead: r.parameters.trainableWithoutHead } } : {}),
  };
}

/** The adapter folder's files, base64, refused (the job fails) past `MAX_ADAPTER_BYTES`. */
async function readAdapter(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile() || entry.name.startsWith('.')) continue;
    total += (await stat(join(dir, entry.name))).size;
    if (total > MAX_ADAPTER_BYTES) {
      throw new UnrecoverableError(
        `${dir}: adapter larger than ${MAX_ADAPTER_BYTES / 2 ** 20} MiB; not sent back (it stays in the run folder)`,
      );
    }
    files[entry.name] = (await readFile(join(dir, entry.name))).toString('base64');
  }
  return files;
}

/** The queues (sweeps) under the address's prefix, for a worker started without `--sweep`. */
async function listSweeps(address: QueueAddress): Promise<string[]> {
  const redis = await connectRedis(address, 'peft-worker-list', () => {});
  try {
    const names = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${address.prefix}:*:meta`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) names.add(key.slice(address.prefix.length + 1, -':meta'.length));
    } while (cursor !== '0');
    return [...names].sort();
  } finally {
    await quit(redis);
  }
}

function positive(flags: Record<string, unknown>, name: string, fallback: number, integer: boolean): number {
  const value = flags[name] ?? fallback;
  if (typeof value !== 'number' || !(value > 0) || (integer && !Number.isInteger(value))) {
    throw new UsageError(
      `--${name} must be a positive ${integer ? 'integer' : 'number'}; got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/**
 * `peft worker --queue URL --sweep NAME [--workers N] [--out DIR] [--stall-seconds S]`: serves until SIGINT or
 * SIGTERM, then gives its running jobs back to the queue. Returns the exit code.
 */
export async function workerCommand(
  flags: Record<string, unknown>,
  io: { out: Output; err: Output },
  command?: PeftCommand,
): Promise<number> {
  if (typeof flags.queue !== 'string') throw new UsageError('missing --queue redis://host:port[/db]');
  const address = parseQueueAddress(flags.queue);
  const workers = positive(flags, 'workers', 1, true);
  const stallSeconds = positive(flags, 'stall-seconds', 30, false);
  if (typeof flags.sweep !== 'string' || flags.sweep === '') {
    const sweeps = await listSweeps(address);
    throw new UsageError(
      `missing --sweep NAME (the sweep file's name); ${
        sweeps.length > 0
          ? `sweeps on ${address.display}: ${sweeps.join(', ')}`
          : `no sweep on ${address.display} yet`
      }`,
    );
  }
  const sweep = flags.sweep;
  const out = typeof flags.out === 'string' ? flags.out : join('sweeps', sweep);
  const log = (line: string) => io.out.write(`${new Date().toISOString()} ${line}\n`);
  const worker = await runQueueWorker({
    address,
    sweep,
    out,
    workers,
    stallSeconds,
    ...(command ? { command } : {}),
    log,
  });
  let signals = 0;
  const stop = () => {
    if (++signals > 1) process.exit(130);
    io.err.write('stopping: the jobs this worker runs go back on the queue\n');
    void worker.stop();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    await worker.closed;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  log(`worker ${worker.name} stopped`);
  return 0;
}
