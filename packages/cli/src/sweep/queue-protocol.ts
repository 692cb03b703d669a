import { z } from 'zod';
import { UsageError } from '../errors.js';

/**
 * What the sweep leader and its queue workers agree on, without loading a queue client: the `--queue` address,
 * the job payload a worker receives, the result it sends back, and the retry policy. A sweep's queue is the BullMQ
 * queue named after the sweep; a job's BullMQ id is the sweep job's id (the hash of its resolved config), so adding
 * a job that is already on the queue adds nothing.
 */

/** Where a sweep's queue lives: a Redis server, database and key prefix. */
export interface QueueAddress {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly username?: string;
  readonly password?: string;
  /** `rediss://`: TLS. */
  readonly tls: boolean;
  /** Prefix of every key of the queue (BullMQ's `prefix`). */
  readonly prefix: string;
  /** The address for messages: no password. */
  readonly display: string;
}

/** Key prefix when the address names none. */
export const DEFAULT_PREFIX = 'peft';

const NAME = /^[\w.-]+$/;

/**
 * Parses `redis://[user:password@]host[:port][/db][?prefix=name]` (`rediss://` for TLS). A malformed address is a
 * usage error naming the flag and what is wrong.
 */
export function parseQueueAddress(text: string, flag = '--queue'): QueueAddress {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(
      `${flag}: "${text}" is not an address; expected redis://host:port[/db][?prefix=name]`,
    );
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new UsageError(`${flag}: "${url.protocol}" is not a queue address; use redis:// or rediss://`);
  }
  if (url.hostname === '') throw new UsageError(`${flag}: "${text}" names no host`);
  const path = url.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d+$/.test(path)) {
    throw new UsageError(`${flag}: database "${path}" in "${text}" is not a number (redis://host:port/0)`);
  }
  for (const key of url.searchParams.keys()) {
    if (key !== 'prefix')
      throw new UsageError(`${flag}: unknown parameter "${key}" (only "prefix" is known)`);
  }
  const prefix = url.searchParams.get('prefix') ?? DEFAULT_PREFIX;
  if (!NAME.test(prefix)) {
    throw new UsageError(`${flag}: prefix "${prefix}" may hold only letters, digits, "_", "." and "-"`);
  }
  const port = url.port === '' ? 6379 : Number(url.port);
  const db = path === '' ? 0 : Number(path);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    host,
    port,
    db,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    tls: url.protocol === 'rediss:',
    prefix,
    display: `${url.protocol}//${url.host}/${db}${prefix === DEFAULT_PREFIX ? '' : `?prefix=${prefix}`}`,
  };
}

/** The payload of a queued job: the resolved `peft train` config and what the leader wants back. */
export const QUEUED_JOB = z.strictObject({
  /** Format of this payload. */
  format: z.literal(1),
  /** The sweep the job belongs to. */
  sweep: z.string(),
  /** Row, task, seed and phase, for people reading worker logs. */
  label: z.string(),
  /** The fully resolved `peft train` config; its hash is the job id. */
  config: z.record(z.string(), z.unknown()),
  /** Send the run's adapter files back with the result. */
  returnAdapter: z.boolean(),
});
/** A queued job's payload. */
export type QueuedJob = z.output<typeof QUEUED_JOB>;

/** The run's `results.json` fields a sweep records (see `RunResults`). */
const RUN_RESULTS = z.object({
  test: z.object({ top1: z.number() }).optional(),
  validation: z.object({ top1: z.number().nullable(), bestEpoch: z.number().int() }).optional(),
  base: z.object({ fingerprint: z.string() }).optional(),
  backend: z.object({ name: z.string(), kernels: z.string().optional() }).optional(),
  parameters: z.object({ trainableWithoutHead: z.number() }).optional(),
});

/** What a worker returns for a job whose run finished. */
export const QUEUED_RESULT = z.strictObject({
  results: RUN_RESULTS,
  /** Wall seconds of the run. */
  seconds: z.number(),
  /** The worker that ran it (`host:pid`). */
  worker: z.string(),
  /** The run's adapter files by name, base64 (when the leader asked for them). */
  adapter: z.record(z.string(), z.string()).optional(),
});
/** A queued job's result. */
export type QueuedResult = z.output<typeof QUEUED_RESULT>;

/** What a worker reports while a job runs (BullMQ progress). */
export interface QueuedProgress {
  /** The worker running it. */
  readonly worker: string;
  /** Epochs finished and planned; absent when the run has just started. */
  readonly epoch?: number;
  readonly epochs?: number;
  /** Training loss of the last finished epoch. */
  readonly loss?: number;
}

/**
 * Tries per job for crashes (a `peft train` killed by a signal or dying of an unexpected exit code), with
 * exponential backoff from `RETRY_DELAY_MS`. A run that fails (exit 1 or 2) is not retried: it fails once. A worker
 * that dies mid-job does not use a try: BullMQ finds the job stalled and hands it to another worker.
 */
export const CRASH_ATTEMPTS = 3;
/** First retry delay after a crash (doubled each time). */
export const RETRY_DELAY_MS = 10_000;
/** How often a job may lose its worker before it is failed as stalled. */
export const MAX_STALLS = 2;
/** Largest adapter a worker sends back (bytes, all files together). */
export const MAX_ADAPTER_BYTES = 256 * 2 ** 20;

/** Exit codes of a `peft train` that failed by itself (run failure, usage): running it again fails again. */
export function failedForGood(exit: { code: number | null; signal: string | null } | undefined): boolean {
  return exit !== undefined && exit.signal === null && (exit.code === 1 || exit.code === 2);
}

/** `row task seed phase`, as worker logs show a job. */
export function jobLabel(job: { row: string; task: string | null; seed: unknown; phase: string }): string {
  return `${job.row}${job.task === null ? '' : ` ${job.task}`} seed ${JSON.stringify(job.seed)} ${job.phase}`;
}
