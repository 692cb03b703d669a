import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PeftError } from '@peftjs/core';
import { fileSize, isFile } from './cache.js';
import { type RequestContext, networkError, redact, responseError } from './http.js';
import { withLock } from './lock.js';
import type { HubProgressSink } from './progress.js';

/** How a downloaded file is checked before it enters the cache. */
export interface ContentCheck {
  /** `sha256` of the content (LFS files: the oid the Hub lists), or git's blob id (small files). */
  readonly kind: 'sha256' | 'git-sha1';
  /** Expected lower-case hex digest. */
  readonly digest: string;
}

/** One file to bring into `blobs/`. */
export interface BlobDownload {
  /** The resolve URL at the commit (the Hub redirects LFS files elsewhere). */
  readonly url: string;
  /** Size the Hub lists, in bytes. */
  readonly size: number;
  /** Expected digest. */
  readonly check: ContentCheck;
  /** `blobs/<etag>`; the transfer goes to `<blobPath>.incomplete` (Python's name, so either resumes the other's). */
  readonly blobPath: string;
  /** What `withLock` locks for this blob. */
  readonly lockResource: string;
  /** Messages' context (reference, file). */
  readonly context: RequestContext & { readonly file: string };
}

/** How transfers run. */
export interface TransferOptions {
  /** The Hub fetch (token only to the endpoint). */
  readonly fetch: typeof fetch;
  /** Progress events. */
  readonly progress: HubProgressSink;
  /** Attempts, each resuming where the last stopped. */
  readonly attempts: number;
  /** Stale time of the lock, ms. */
  readonly lockStaleMs: number;
}

/** A transfer that stopped early and can be resumed. */
class Interrupted extends Error {}

/** Bytes received over all attempts of one download. */
interface Received {
  bytes: number;
}

const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

function diskFull(spec: BlobDownload, detail: string, partial: number, cause?: unknown): PeftError {
  const { reference, file, settings } = spec.context;
  const keep =
    partial > 0
      ? `; the ${partial} bytes already fetched stay in ${spec.blobPath}.incomplete and the download resumes there`
      : '';
  return new PeftError(
    'DISK_FULL',
    `${reference}: disk full writing ${file} (${spec.size} bytes) into ${settings.cacheDir}: ${detail}. ` +
      `Free space or point HF_HUB_CACHE at a larger disk${keep}`,
    { cause },
  );
}

async function checkFreeSpace(spec: BlobDownload, partial: number): Promise<void> {
  const needed = spec.size - partial;
  let free: number;
  try {
    const stats = await statfs(dirname(spec.blobPath));
    free = stats.bavail * stats.bsize;
  } catch {
    // statfs is unsupported on some filesystems: the write itself still reports ENOSPC.
    return;
  }
  if (free < needed) throw diskFull(spec, `${needed} bytes needed, ${free} free`, partial);
}

function rangeStart(response: Response): number | undefined {
  const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
  return match ? Number(match[1]) : undefined;
}

/** Opens the response for bytes from `offset`: the start the body begins at, or a retryable interruption. */
async function request(
  spec: BlobDownload,
  offset: number,
  options: TransferOptions,
): Promise<{ response: Response; start: number }> {
  const incomplete = `${spec.blobPath}.incomplete`;
  let response: Response;
  try {
    response = await options.fetch(spec.url, { headers: offset > 0 ? { Range: `bytes=${offset}-` } : {} });
  } catch (error) {
    const reason = networkError(error, spec.context).message;
    throw new Interrupted(reason);
  }
  if (response.status === 416) {
    await response.body?.cancel();
    await rm(incomplete, { force: true });
    throw new Interrupted('the server refused the resume range; starting over');
  }
  if (response.status >= 500) {
    await response.body?.cancel();
    throw new Interrupted(`the server answered ${response.status}`);
  }
  if (!response.ok) throw await responseError(response, spec.context);
  if (response.status !== 206) return { response, start: 0 };
  const start = rangeStart(response);
  if (start !== offset) {
    await response.body?.cancel();
    await rm(incomplete, { force: true });
    throw new Interrupted(`the server resumed at byte ${start ?? '?'} instead of ${offset}; starting over`);
  }
  return { response, start };
}

/** One request: appends the body to `.incomplete` (from 0 when the server ignored `Range`). */
async function transferOnce(
  spec: BlobDownload,
  offset: number,
  options: TransferOptions,
  received: Received,
): Promise<void> {
  const { reference, file } = spec.context;
  const incomplete = `${spec.blobPath}.incomplete`;
  const { response, start } = await request(spec, offset, options);
  const handle = await open(incomplete, start === 0 ? 'w' : 'a');
  let written = start;
  try {
    if (!response.body) throw new Interrupted('the server sent no body');
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      if (written + chunk.length > spec.size) {
        await rm(incomplete, { force: true });
        throw new PeftError(
          'CHECKSUM_MISMATCH',
          `${reference}: ${file} is longer than the ${spec.size} bytes the Hub lists; nothing was cached`,
        );
      }
      await handle.write(chunk);
      written += chunk.length;
      received.bytes += chunk.length;
      options.progress({ type: 'progress', reference, file, done: written, size: spec.size });
    }
  } catch (error) {
    if (error instanceof PeftError || error instanceof Interrupted) throw error;
    const code = (error as { code?: string }).code ?? '';
    if (DISK_FULL_CODES.has(code)) {
      throw diskFull(spec, (error as Error).message, await fileSize(incomplete), error);
    }
    throw new Interrupted(`connection lost at byte ${written} of ${spec.size} (${(error as Error).message})`);
  } finally {
    await handle.close().catch(() => {});
  }
  if (written < spec.size) throw new Interrupted(`connection closed at byte ${written} of ${spec.size}`);
}

/** Hex digest of a file as `check` defines it (git's blob id hashes a `blob <size>\0` header first). */
export async function fileDigest(path: string, kind: ContentCheck['kind'], size: number): Promise<string> {
  const hash = createHash(kind === 'sha256' ? 'sha256' : 'sha1');
  if (kind === 'git-sha1') hash.update(`blob ${size}\0`);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function fetchVerified(
  spec: BlobDownload,
  options: TransferOptions,
  assertHeld: () => void,
): Promise<number> {
  const { reference, file, settings } = spec.context;
  const incomplete = `${spec.blobPath}.incomplete`;
  const started = Date.now();
  const received: Received = { bytes: 0 };
  let offset = await fileSize(incomplete);
  if (offset > spec.size) {
    await rm(incomplete, { force: true });
    offset = 0;
  }
  await checkFreeSpace(spec, offset);
  options.progress({ type: 'start', reference, file, size: spec.size, resumeFrom: offset });
  for (let attempt = 1; offset < spec.size; attempt++) {
    try {
      await transferOnce(spec, offset, options, received);
    } catch (error) {
      offset = await fileSize(incomplete);
      if (!(error instanceof Interrupted)) throw error;
      if (attempt >= options.attempts) {
        throw new PeftError(
          'HUB_REQUEST_FAILED',
          `${reference}: downloading ${file} failed ${attempt} times (last: ${redact(error.message, settings.token)}); ` +
            `${offset} bytes are kept in ${incomplete} and the next attempt resumes there`,
        );
      }
      options.progress({
        type: 'retry',
        reference,
        file,
        attempt,
        resumeFrom: offset,
        reason: error.message,
      });
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      continue;
    }
    offset = await fileSize(incomplete);
  }
  assertHeld();
  const digest = await fileDigest(incomplete, spec.check.kind, spec.size);
  if (digest !== spec.check.digest) {
    await rm(incomplete, { force: true });
    throw new PeftError(
      'CHECKSUM_MISMATCH',
      `${reference}: ${file} failed verification (${spec.check.kind} ${digest}, the Hub lists ` +
        `${spec.check.digest}); the download was deleted and nothing was cached`,
    );
  }
  await rename(incomplete, spec.blobPath);
  const downloaded = received.bytes;
  const verified = spec.check.kind;
  options.progress({
    type: 'done',
    reference,
    file,
    size: spec.size,
    downloaded,
    ms: Date.now() - started,
    verified,
  });
  return downloaded;
}

/**
 * Brings one blob into the cache unless it is there: under a cross-process lock, resumed from a previous
 * `.incomplete` with an HTTP Range request, retried on broken connections and 5xx answers, verified against the
 * Hub's digest, then renamed into place (readers never see a partial blob). Returns the bytes transferred.
 */
export async function ensureBlob(spec: BlobDownload, options: TransferOptions): Promise<number> {
  if (await isFile(spec.blobPath)) return 0;
  await mkdir(dirname(spec.blobPath), { recursive: true });
  const { reference, file } = spec.context;
  return withLock(
    spec.lockResource,
    {
      staleMs: options.lockStaleMs,
      onWait: () => options.progress({ type: 'waiting', reference, file }),
    },
    async (assertHeld) => {
      // Another process may have finished this blob while we waited for the lock.
      if (await isFile(spec.blobPath)) return 0;
      return fetchVerified(spec, options, assertHeld);
    },
  );
}
