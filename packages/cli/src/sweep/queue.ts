import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PeftError } from '@peftjs/core';
import { writeFileAtomic } from '@peftjs/core/internal';
import { type Job as BullJob, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import type { JobOutcome, JobRunner } from './local.js';
import type { Job } from './plan.js';
import {
  CRASH_ATTEMPTS,
  QUEUED_RESULT,
  type QueueAddress,
  type QueuedJob,
  type QueuedProgress,
  RETRY_DELAY_MS,
  jobLabel,
} from './queue-protocol.js';

/**
 * The leader's side of a sweep on a BullMQ queue: ready jobs go on the queue named after the sweep (BullMQ job id
 * = the sweep job id, so a job already there is not added twice), `peft worker` processes anywhere take them, and
 * each finished job comes back as a `JobOutcome` for the leader to record. Jobs stay on the queue until the leader
 * has recorded them, so a leader that stops (or dies) and starts again collects what finished meanwhile.
 */

/**
 * Opens a connection to the queue's Redis (BullMQ needs `maxRetriesPerRequest: null`). The first connection must
 * succeed (an unreachable server is an error naming the address); later drops are retried, each reported once
 * through `onError`.
 */
export async function connectRedis(
  address: QueueAddress,
  name: string,
  onError: (message: string) => void,
): Promise<Redis> {
  const client = new Redis({
    host: address.host,
    port: address.port,
    db: address.db,
    ...(address.username ? { username: address.username } : {}),
    ...(address.password ? { password: address.password } : {}),
    ...(address.tls ? { tls: {} } : {}),
    connectionName: name,
    maxRetriesPerRequest: null,
    lazyConnect: true,
    connectTimeout: 10_000,
  });
  let last = '';
  client.on('error', (error: Error) => {
    if (error.message !== last) onError(`queue ${address.display}: ${error.message}`);
    last = error.message;
  });
  client.on('ready', () => {
    last = '';
  });
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw new PeftError(
      'IO_FAILED',
      `cannot reach the queue at ${address.display}: ${last || (error as Error).message}`,
      { cause: error },
    );
  }
  return client;
}

/** `pid P on HOST (command, since T)` from a lease's value. */
function describeHolder(value: string | null): string {
  if (value === null) return 'a leader that just stopped';
  try {
    const h = JSON.parse(value) as { pid: number; host: string; command: string; started: string };
    return `pid ${h.pid} on ${h.host} (${h.command}, since ${h.started})`;
  } catch {
    return value;
  }
}

/** Seconds a leader's lease on its sweep's queue lasts without renewal. */
const LEASE_SECONDS = 15;

/**
 * Takes the sweep's leader lease on the queue, so that two leaders never collect (and remove) each other's jobs.
 * A lease left by a leader that died expires after `LEASE_SECONDS`; this waits that long for it, then refuses,
 * naming the holder. Returns the release function; the lease is renewed until then.
 */
async function takeLease(
  redis: Redis,
  key: string,
  command: string,
  onWait: (holder: string) => void,
): Promise<() => Promise<void>> {
  const me = JSON.stringify({
    host: hostname(),
    pid: process.pid,
    command,
    started: new Date().toISOString(),
    token: randomUUID(),
  });
  const deadline = Date.now() + (LEASE_SECONDS + 5) * 1000;
  let announced = false;
  while ((await redis.set(key, me, 'PX', LEASE_SECONDS * 1000, 'NX')) !== 'OK') {
    const holder = describeHolder(await redis.get(key));
    if (Date.now() > deadline) {
      throw new PeftError(
        'FOLDER_LOCKED',
        `the sweep's queue is led by ${holder}; stop that leader first (a leader that died frees it within ${LEASE_SECONDS} s)`,
      );
    }
    if (!announced) onWait(holder);
    announced = true;
    await new Promise((r) => setTimeout(r, 1000));
  }
  // Renew and release only while the lease is still ours.
  const renew = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0`;
  const drop = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;
  const timer = setInterval(
    () => {
      redis.eval(renew, 1, key, me, String(LEASE_SECONDS * 1000)).catch(() => {});
    },
    (LEASE_SECONDS * 1000) / 3,
  );
  timer.unref();
  return async () => {
    clearInterval(timer);
    await redis.eval(drop, 1, key, me).catch(() => {});
  };
}

/** Options of `QueueRunner.open`. */
export interface QueueRunnerOptions {
  readonly address: QueueAddress;
  /** The sweep's name: its queue's name. */
  readonly sweep: string;
  /** Where returned adapters are written: `<runsDir>/<id>/adapter/`. */
  readonly runsDir: string;
  /** Ask workers to send each run's adapter files back. */
  readonly returnAdapter: boolean;
  /** Most jobs on the queue at once, added in the plan's priority order (default 256). */
  readonly depth?: number;
  /** The leader's command line, recorded in its lease. */
  readonly command?: string;
  /** Lines for the leader's log: jobs taken, their progress, stalls, connection trouble. */
  readonly onEvent?: (line: string) => void;
  /** Seconds between looks for finished jobs whose event was missed (default 10). */
  readonly pollSeconds?: number;
}

interface Waiter {
  readonly job: Job;
  readonly label: string;
  readonly resolve: (outcome: JobOutcome) => void;
}

/** A sweep's jobs run by `peft worker` processes through a BullMQ queue on Redis. */
export class QueueRunner implements JobRunner {
  readonly capacity: number;
  readonly stopNote =
    'jobs on the queue keep running on the workers; the next `peft sweep --queue` collects them';
  private readonly waiting = new Map<string, Waiter>();
  private readonly active = new Set<string>();
  private closed = false;
  private poll: NodeJS.Timeout | undefined;

  private constructor(
    private readonly options: QueueRunnerOptions,
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    private readonly connections: readonly Redis[],
    private readonly releaseLease: () => Promise<void>,
  ) {
    this.capacity = options.depth ?? 256;
  }

  /** Connects, takes the sweep's leader lease and starts listening for finished jobs. */
  static async open(options: QueueRunnerOptions): Promise<QueueRunner> {
    const say = options.onEvent ?? (() => {});
    const { address, sweep } = options;
    const client = await connectRedis(address, `peft-sweep:${sweep}`, say);
    const eventsClient = await connectRedis(address, `peft-sweep-events:${sweep}`, say).catch(
      async (error: unknown) => {
        client.disconnect();
        throw error;
      },
    );
    try {
      const release = await takeLease(
        client,
        `${address.prefix}:${sweep}:peft-leader`,
        options.command ?? 'peft sweep',
        (holder) => say(`waiting for the previous leader's lease to expire (${holder})`),
      );
      const queue = new Queue(sweep, { connection: client, prefix: address.prefix });
      const events = new QueueEvents(sweep, { connection: eventsClient, prefix: address.prefix });
      await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
      const runner = new QueueRunner(options, queue, events, [client, eventsClient], release);
      runner.listen();
      return runner;
    } catch (error) {
      client.disconnect();
      eventsClient.disconnect();
      throw error;
    }
  }

  private listen(): void {
    const say = this.options.onEvent ?? (() => {});
    const known = (id: string) => this.waiting.get(id);
    this.events.on('active', ({ jobId }) => {
      if (known(jobId)) this.active.add(jobId);
    });
    this.events.on('progress', ({ jobId, data }) => {
      const waiter = known(jobId);
      const p = data as Partial<QueuedProgress>;
      if (!waiter || typeof p !== 'object' || p === null) return;
      const at = p.epoch === undefined ? 'started' : `epoch ${p.epoch}/${p.epochs ?? '?'}`;
      const loss = typeof p.loss === 'number' ? ` loss ${p.loss.toFixed(4)}` : '';
      say(`${waiter.label}: ${at}${loss} on ${p.worker ?? 'a worker'}`);
    });
    this.events.on('stalled', ({ jobId }) => {
      const waiter = known(jobId);
      this.active.delete(jobId);
      if (waiter) say(`${waiter.label}: its worker stopped answering; the job goes to another worker`);
    });
    for (const event of ['waiting', 'delayed'] as const) {
      this.events.on(event, ({ jobId }: { jobId: string }) => this.active.delete(jobId));
    }
    for (const event of ['completed', 'failed'] as const) {
      this.events.on(event, ({ jobId }: { jobId: string }) => {
        if (known(jobId)) void this.collect(jobId);
      });
    }
    this.events.on('error', (error: Error) => say(`queue events: ${error.message}`));
    // Events can be missed (a dropped connection): look for finished jobs now and then.
    this.poll = setInterval(() => void this.collectFinished(), (this.options.pollSeconds ?? 10) * 1000);
    this.poll.unref();
  }

  /** Puts the job on the queue (nothing is added when it is already there) and resolves when it has finished. */
  async run(job: Job): Promise<JobOutcome> {
    if (this.closed) throw new Error('the queue runner is closed');
    const label = jobLabel(job);
    const outcome = new Promise<JobOutcome>((resolve) => this.waiting.set(job.id, { job, label, resolve }));
    const payload: QueuedJob = {
      format: 1,
      sweep: this.options.sweep,
      label,
      config: job.resolved,
      returnAdapter: this.options.returnAdapter,
    };
    await this.queue.add(label, payload, {
      jobId: job.id,
      attempts: CRASH_ATTEMPTS,
      backoff: { type: 'exponential', delay: RETRY_DELAY_MS },
    });
    // Already finished (a job a previous leader added) or already running: no event will say so.
    const state = await this.queue.getJobState(job.id);
    if (state === 'active') this.active.add(job.id);
    if (state === 'completed' || state === 'failed') await this.collect(job.id);
    return outcome;
  }

  running(): number {
    return this.active.size;
  }

  /** The leader has recorded the job: it leaves the queue. */
  async recorded(jobId: string): Promise<void> {
    await this.queue.remove(jobId).catch(() => {});
  }

  private async collectFinished(): Promise<void> {
    if (this.closed || this.waiting.size === 0) return;
    try {
      const finished = await this.queue.getJobs(['completed', 'failed'], 0, -1);
      for (const bull of finished) if (bull.id && this.waiting.has(bull.id)) await this.settle(bull);
    } catch (error) {
      this.options.onEvent?.(`looking for finished jobs: ${(error as Error).message}`);
    }
  }

  private async collect(jobId: string): Promise<void> {
    const bull = await this.queue.getJob(jobId).catch(() => undefined);
    if (bull) await this.settle(bull);
  }

  /** Turns a finished BullMQ job into the leader's outcome (writing a returned adapter first). */
  private async settle(bull: BullJob): Promise<void> {
    const id = bull.id as string;
    if (!this.waiting.has(id)) return;
    const state = await bull.getState();
    const waiter = this.waiting.get(id);
    if (!waiter || (state !== 'completed' && state !== 'failed')) return;
    this.waiting.delete(id);
    this.active.delete(id);
    const worker = bull.processedBy ?? 'a queue worker';
    const seconds = bull.processedOn && bull.finishedOn ? (bull.finishedOn - bull.processedOn) / 1000 : 0;
    if (state === 'failed') {
      const tries = bull.attemptsMade > 1 ? ` (after ${bull.attemptsMade} tries)` : '';
      waiter.resolve({ status: 'failed', error: `${bull.failedReason}${tries}`, seconds, worker });
      return;
    }
    const parsed = QUEUED_RESULT.safeParse(bull.returnvalue);
    if (!parsed.success) {
      const problem = parsed.error.issues[0];
      waiter.resolve({
        status: 'failed',
        error: `the worker's result is not readable (${problem?.path.join('.')}: ${problem?.message})`,
        seconds,
        worker,
      });
      return;
    }
    const result = parsed.data;
    try {
      if (result.adapter) await this.writeAdapter(id, result.adapter);
    } catch (error) {
      const message = `cannot write the returned adapter: ${(error as Error).message}`;
      waiter.resolve({ status: 'failed', error: message, seconds: result.seconds, worker: result.worker });
      return;
    }
    waiter.resolve({
      status: 'done',
      results: result.results,
      seconds: result.seconds,
      worker: result.worker,
    });
  }

  private async writeAdapter(id: string, files: Record<string, string>): Promise<void> {
    const dir = join(this.options.runsDir, id, 'adapter');
    await mkdir(dir, { recursive: true });
    for (const [name, base64] of Object.entries(files)) {
      if (!/^[\w.-]+$/.test(name) || name.startsWith('.')) throw new Error(`bad adapter file name "${name}"`);
      await writeFileAtomic(join(dir, name), Buffer.from(base64, 'base64'));
    }
  }

  /** Stops waiting (jobs stay on the queue for the next leader), releases the lease and the connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.poll);
    for (const [id, waiter] of this.waiting) {
      this.waiting.delete(id);
      waiter.resolve({ status: 'failed', error: 'the sweep stopped', seconds: 0, worker: 'leader' });
    }
    await this.events.close().catch(() => {});
    await this.queue.close().catch(() => {});
    await this.releaseLease();
    for (const connection of this.connections) await connection.quit().catch(() => connection.disconnect());
  }
}
