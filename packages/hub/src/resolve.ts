import { readFile, stat } from 'node:fs/promises';
import { modelInfo, pathsInfo } from '@huggingface/hub';
import { PeftError } from '@peftjs/core';
import { RepoCache } from './cache.js';
import { type ContentCheck, type TransferOptions, ensureBlob } from './download.js';
import { type RequestContext, checkedFetch, hubFetch, redact } from './http.js';
import { CONFIG_FILE, type PretrainedConfig, parsePretrainedConfig } from './pretrained.js';
import { progressSink } from './progress.js';
import {
  type WeightsReference,
  formatWeightsReference,
  isCommitHash,
  parseWeightsReference,
} from './reference.js';
import { type HubOptions, type HubSettings, hubSettings } from './settings.js';

/** A reference resolved to a verified file in the Hugging Face cache. */
export interface ResolvedWeights {
  /** The reference in canonical form, `hf:org/repo@revision:file`. */
  readonly reference: string;
  /** The same pinned to the commit, `hf:org/repo@<commit>:file`: reloads exactly these bytes. */
  readonly pinned: string;
  /** Repository id. */
  readonly repo: string;
  /** Revision asked for. */
  readonly revision: string;
  /** Commit the revision resolved to. */
  readonly commit: string;
  /** File in the repository. */
  readonly file: string;
  /** Local path of the weights: `<cache>/models--org--name/snapshots/<commit>/<file>`. */
  readonly path: string;
  /** Size of the weights file in bytes. */
  readonly size: number;
  /** The repository's `config.json` as understood (absent when it has none, or one of another library). */
  readonly pretrained?: PretrainedConfig;
  /** Local path of `config.json`, when the repository has one (and, offline, when it is cached). */
  readonly configPath?: string;
  /** `cache`: answered from the cache with no request at all; `hub`: the Hub was asked. */
  readonly origin: 'cache' | 'hub';
  /** Bytes this call transferred. */
  readonly downloadedBytes: number;
  /** The cache root used. */
  readonly cacheDir: string;
}

type FileState = Awaited<ReturnType<RepoCache['cachedFile']>>;

interface CacheView {
  readonly commit: string | undefined;
  readonly weights: FileState;
  readonly config: FileState;
}

async function lookInCache(cache: RepoCache, ref: WeightsReference): Promise<CacheView> {
  const commit = await cache.cachedCommit(ref.revision);
  const unknown: FileState = { state: 'unknown' };
  if (!commit) return { commit, weights: unknown, config: unknown };
  return {
    commit,
    weights: await cache.cachedFile(commit, ref.file),
    config: await cache.cachedFile(commit, CONFIG_FILE),
  };
}

function offlineMiss(text: string, ref: WeightsReference, cache: RepoCache, view: CacheView): PeftError {
  if (view.commit && view.weights.state === 'absent') {
    return new PeftError(
      'HUB_NOT_FOUND',
      `${text}: file "${ref.file}" is not in ${ref.repo} at ${view.commit} (recorded in the cache ${cache.cacheDir})`,
    );
  }
  const missing = view.commit
    ? `${cache.snapshotPath(view.commit, ref.file)} does not exist`
    : `${cache.refPath(ref.revision)} does not exist (revision "${ref.revision}" was never downloaded)`;
  return new PeftError(
    'HUB_OFFLINE_MISS',
    `${text}: offline (HF_HUB_OFFLINE or offline: true) and not in the cache ${cache.cacheDir}: ${missing}`,
  );
}

function resolveUrl(settings: HubSettings, repo: string, commit: string, file: string): string {
  const path = file.split('/').map(encodeURIComponent).join('/');
  return `${settings.endpoint}/${repo}/resolve/${commit}/${path}`;
}

async function resolveCommit(ref: WeightsReference, settings: HubSettings, api: typeof fetch, text: string) {
  if (isCommitHash(ref.revision)) return ref.revision;
  const info = await modelInfo({
    name: ref.repo,
    revision: ref.revision,
    additionalFields: ['sha'],
    hubUrl: settings.endpoint,
    fetch: api,
  });
  if (typeof info.sha !== 'string' || !isCommitHash(info.sha)) {
    throw new PeftError(
      'HUB_REQUEST_FAILED',
      `${text}: the Hub gave no commit for revision "${ref.revision}"`,
    );
  }
  return info.sha;
}

/** Fetches the files the cache lacks at `commit` (metadata from the Hub, bytes verified), links the snapshot. */
async function fetchFiles(
  files: readonly string[],
  commit: string,
  context: RequestContext & {
    readonly api: typeof fetch;
    readonly cache: RepoCache;
    readonly weightsFile: string;
  },
  transfer: TransferOptions,
): Promise<number> {
  const { settings, cache, repo } = context;
  const infos = await pathsInfo({
    repo: { type: 'model', name: repo },
    paths: [...files],
    revision: commit,
    hubUrl: settings.endpoint,
    fetch: context.api,
  });
  let downloaded = 0;
  for (const file of files) {
    const info = infos.find((entry) => entry.path === file);
    if (info?.type !== 'file') {
      await cache.markAbsent(commit, file);
      if (file !== context.weightsFile) continue;
      // As Python does: the revision → commit mapping is known, so a later offline call can read the marker.
      await cache.writeRef(context.revision, commit);
      throw new PeftError(
        'HUB_NOT_FOUND',
        `${context.reference}: file "${file}" is not in ${repo} at ${commit}`,
      );
    }
    if (!info.lfs && info.xetHash) {
      // A Xet-only entry has no content sha256 to check the bytes against; refuse rather than trust them.
      throw new PeftError(
        'HUB_REQUEST_FAILED',
        `${context.reference}: the Hub lists no sha256 for "${file}"`,
      );
    }
    const check: ContentCheck | undefined = info.lfs
      ? { kind: 'sha256', digest: info.lfs.oid }
      : info.oid
        ? { kind: 'git-sha1', digest: info.oid }
        : undefined;
    if (!check) {
      throw new PeftError(
        'HUB_REQUEST_FAILED',
        `${context.reference}: the Hub lists no checksum for "${file}"`,
      );
    }
    downloaded += await ensureBlob(
      {
        url: resolveUrl(settings, repo, commit, file),
        size: info.lfs?.size ?? info.size,
        check,
        blobPath: cache.blobPath(check.digest),
        lockResource: cache.lockResource(check.digest),
        context: { ...context, file },
      },
      transfer,
    );
    await cache.linkSnapshot(commit, file, check.digest);
  }
  return downloaded;
}

async function readPretrained(path: string | undefined, text: string): Promise<PretrainedConfig | undefined> {
  if (!path) return undefined;
  return parsePretrainedConfig(await readFile(path, 'utf8'), `${text}: ${CONFIG_FILE}`) ?? undefined;
}

/**
 * Resolves `hf:<org>/<repo>[@revision][:file]` or `timm:<model-name>[@revision][:file]` to a verified local file
 * in the Hugging Face cache (Python's layout, shared with `huggingface_hub`), with the repository's `config.json`.
 * A reference the cache already holds is answered with no request at all; otherwise `@huggingface/hub` resolves
 * the revision and lists the files' checksums, and the bytes are downloaded resumably, verified, atomically and
 * under a cross-process lock. Offline (`HF_HUB_OFFLINE=1`) only the cache is used. Every failure is a
 * `PeftError` naming the reference.
 */
export async function resolveWeights(text: string, options: HubOptions = {}): Promise<ResolvedWeights> {
  const ref = parseWeightsReference(text);
  if (!ref) {
    throw new PeftError('HUB_INVALID_REFERENCE', `"${text}" is not a weights reference (hf:… or timm:…)`);
  }
  const settings = await hubSettings(options);
  try {
    return await resolveIn(text, ref, settings, options);
  } catch (error) {
    if (error instanceof PeftError) throw error;
    // File-system failures (an unwritable cache folder, a file where a folder should be) name the reference too.
    const message = redact((error as Error).message, settings.token);
    throw new PeftError('IO_FAILED', `${text}: ${message}`, { cause: error });
  }
}

async function resolveIn(
  text: string,
  ref: WeightsReference,
  settings: HubSettings,
  options: HubOptions,
): Promise<ResolvedWeights> {
  const cache = new RepoCache(settings.cacheDir, ref.repo);
  const view = await lookInCache(cache, ref);
  const weightsCached = view.weights.state === 'present';
  const configKnown = view.config.state !== 'unknown';
  let commit = view.commit;
  let downloaded = 0;
  let origin: ResolvedWeights['origin'] = 'cache';
  if (settings.offline) {
    if (!weightsCached || !commit) throw offlineMiss(text, ref, cache, view);
  } else if (!weightsCached || !configKnown || options.refresh) {
    origin = 'hub';
    const context: RequestContext = { reference: text, repo: ref.repo, revision: ref.revision, settings };
    const api = checkedFetch(hubFetch(settings), context);
    const onlyConfig = weightsCached && !options.refresh && commit !== undefined;
    commit = onlyConfig && commit ? commit : await resolveCommit(ref, settings, api, text);
    const wanted = onlyConfig ? [CONFIG_FILE] : [...new Set([CONFIG_FILE, ref.file])];
    downloaded = await fetchFiles(
      wanted,
      commit,
      { ...context, api, cache, weightsFile: ref.file },
      {
        fetch: hubFetch(settings),
        progress: progressSink(options.progress),
        attempts: Math.max(1, options.attempts ?? 4),
        lockStaleMs: options.lockStaleMs ?? 30_000,
      },
    );
    await cache.writeRef(ref.revision, commit);
  }
  if (!commit) throw offlineMiss(text, ref, cache, view);
  const path = cache.snapshotPath(commit, ref.file);
  const config = await cache.cachedFile(commit, CONFIG_FILE);
  const configPath = config.state === 'present' ? config.path : undefined;
  const pretrained = await readPretrained(configPath, text);
  return {
    reference: formatWeightsReference(ref),
    pinned: formatWeightsReference(ref, commit),
    repo: ref.repo,
    revision: ref.revision,
    commit,
    file: ref.file,
    path,
    size: (await stat(path)).size,
    ...(pretrained ? { pretrained } : {}),
    ...(configPath ? { configPath } : {}),
    origin,
    downloadedBytes: downloaded,
    cacheDir: settings.cacheDir,
  };
}
