import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type HubProgressEvent, progressBar } from './progress.js';
import { resolveWeights } from './resolve.js';
import type { HubOptions } from './settings.js';
import {
  TIMM_CONFIG,
  TIMM_REF,
  TIMM_REPO,
  freshCache,
  isolateEnvironment,
  listTree,
  mockRepos,
  weightsBytes,
} from './test-support.js';
import { MockHub, gitBlobOid } from './testing/mock-hub.js';

const WEIGHTS = weightsBytes();
const CONFIG_TEXT = JSON.stringify(TIMM_CONFIG, null, 2);
const SHA256 = createHash('sha256').update(WEIGHTS).digest('hex');
const CONFIG_OID = gitBlobOid(new TextEncoder().encode(CONFIG_TEXT));
const FOLDER = 'models--timm--vit_mock_patch8_32.tiny_in1k';

let hub: MockHub;
let cacheDir: string;
let events: HubProgressEvent[];

const options = (extra: HubOptions = {}): HubOptions => ({
  endpoint: hub.endpoint,
  cacheDir,
  progress: (event) => events.push(event),
  ...extra,
});
const sha256Of = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
const lfsRequests = () => hub.requests.filter((r) => r.server === 'lfs');

beforeAll(async () => {
  await isolateEnvironment();
  hub = await MockHub.start({ repos: mockRepos(WEIGHTS) });
});
afterAll(() => hub.close());
beforeEach(async () => {
  cacheDir = await freshCache();
  hub.requests.length = 0;
  hub.fault = undefined;
  events = [];
});

describe('resolveWeights: first download', () => {
  it('fetches weights and config.json into the Python cache layout, verified, with refs/main', async () => {
    const resolved = await resolveWeights(TIMM_REF, options());
    const commit = hub.commitOf(TIMM_REPO);
    const repoDir = join(cacheDir, FOLDER);
    expect(resolved).toMatchObject({
      reference: `hf:${TIMM_REPO}@main:model.safetensors`,
      pinned: `hf:${TIMM_REPO}@${commit}:model.safetensors`,
      commit,
      origin: 'hub',
      downloadedBytes: WEIGHTS.length + CONFIG_TEXT.length,
      size: WEIGHTS.length,
      path: join(repoDir, 'snapshots', commit, 'model.safetensors'),
    });
    expect(await listTree(repoDir)).toEqual(
      [
        `blobs/${CONFIG_OID}`,
        `blobs/${SHA256}`,
        'refs/main',
        `snapshots/${commit}/config.json`,
        `snapshots/${commit}/model.safetensors`,
      ].sort(),
    );
    expect((await lstat(resolved.path)).isSymbolicLink()).toBe(true);
    expect(await readlink(resolved.path)).toBe(`../../blobs/${SHA256}`);
    expect(await readlink(join(repoDir, 'snapshots', commit, 'config.json'))).toBe(
      `../../blobs/${CONFIG_OID}`,
    );
    expect(await readFile(join(repoDir, 'refs', 'main'), 'utf8')).toBe(commit);
    expect(await sha256Of(resolved.path)).toBe(SHA256);
    expect(resolved.pretrained).toEqual({
      library: 'timm',
      architecture: 'vit_mock_patch8_32',
      tag: 'tiny_in1k',
      inputSize: [3, 32, 32],
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
      numClasses: 10,
      heads: 2,
      interpolation: 'bicubic',
      cropPct: 0.9,
    });
    // One API call per question, then the bytes: the LFS file through the Hub's redirect to the other server.
    expect(hub.requests.map((r) => `${r.server} ${r.method} ${r.url.split('?')[0]} ${r.status}`)).toEqual([
      `api GET /api/models/${TIMM_REPO}/revision/main 200`,
      `api POST /api/models/${TIMM_REPO}/paths-info/${commit} 200`,
      `api GET /${TIMM_REPO}/resolve/${commit}/config.json 200`,
      `api GET /${TIMM_REPO}/resolve/${commit}/model.safetensors 302`,
      `lfs GET /lfs/${SHA256} 200`,
    ]);
    expect(events.filter((e) => e.type === 'done').map((e) => e.type === 'done' && e.verified)).toEqual([
      'git-sha1',
      'sha256',
    ]);
  });

  it('answers a cached reference with no request at all, by branch or by pinned commit', async () => {
    const first = await resolveWeights(TIMM_REF, options());
    hub.requests.length = 0;
    const again = await resolveWeights(TIMM_REF, options());
    const pinned = await resolveWeights(first.pinned, options());
    expect(hub.requests).toEqual([]);
    expect(again).toMatchObject({ origin: 'cache', downloadedBytes: 0, path: first.path });
    expect(pinned).toMatchObject({ origin: 'cache', path: first.path, pretrained: first.pretrained });
  });

  it('asks again with refresh: true, and downloads nothing when the commit is unchanged', async () => {
    await resolveWeights(TIMM_REF, options());
    hub.requests.length = 0;
    const refreshed = await resolveWeights(TIMM_REF, options({ refresh: true }));
    expect(refreshed).toMatchObject({ origin: 'hub', downloadedBytes: 0 });
    expect(hub.requests.map((r) => r.method)).toEqual(['GET', 'POST']);
  });

  it('uses HF_ENDPOINT (a mirror) and HF_HUB_CACHE from the environment', async () => {
    process.env.HF_ENDPOINT = `${hub.endpoint}/`;
    process.env.HF_HUB_CACHE = cacheDir;
    try {
      const resolved = await resolveWeights(TIMM_REF, { progress: false });
      expect(resolved.cacheDir).toBe(cacheDir);
      expect(resolved.path.startsWith(join(cacheDir, FOLDER))).toBe(true);
      expect(hub.requests.length).toBeGreaterThan(0);
    } finally {
      delete process.env.HF_ENDPOINT;
      delete process.env.HF_HUB_CACHE;
    }
  });
});

describe('resolveWeights: interrupted and corrupted downloads', () => {
  it('resumes a dropped connection with a Range request and verifies the whole file', async () => {
    hub.fault = { kind: 'drop', afterBytes: 400_000, times: 1 };
    const resolved = await resolveWeights(TIMM_REF, options());
    const transfers = lfsRequests();
    expect(transfers.map((r) => r.range)).toEqual([undefined, 'bytes=400000-']);
    expect(transfers[1]?.status).toBe(206);
    expect(await sha256Of(resolved.path)).toBe(SHA256);
    expect(resolved.downloadedBytes).toBe(WEIGHTS.length + CONFIG_TEXT.length);
    expect(events).toContainEqual(expect.objectContaining({ type: 'retry', resumeFrom: 400_000 }));
  });

  it('keeps the partial file after the last attempt and resumes from it on the next call', async () => {
    hub.fault = { kind: 'drop', afterBytes: 300_000 };
    const failure = resolveWeights(TIMM_REF, options({ attempts: 1 }));
    await expect(failure).rejects.toMatchObject({ code: 'HUB_REQUEST_FAILED' });
    await expect(failure).rejects.toThrow(
      /^timm:vit_mock_patch8_32\.tiny_in1k: downloading model\.safetensors failed 1 times/,
    );
    const incomplete = join(cacheDir, FOLDER, 'blobs', `${SHA256}.incomplete`);
    expect((await readFile(incomplete)).length).toBe(300_000);
    expect(await listTree(join(cacheDir, FOLDER, 'refs'))).toEqual([]);

    hub.fault = undefined;
    hub.requests.length = 0;
    const resolved = await resolveWeights(TIMM_REF, options());
    expect(lfsRequests().map((r) => r.range)).toEqual(['bytes=300000-']);
    expect(resolved.downloadedBytes).toBe(WEIGHTS.length - 300_000);
    expect(await sha256Of(resolved.path)).toBe(SHA256);
    expect(await listTree(join(cacheDir, FOLDER, 'blobs'))).toEqual([CONFIG_OID, SHA256].sort());
  });

  it('starts over when the server ignores Range, and retries a 5xx answer', async () => {
    const blobs = join(cacheDir, FOLDER, 'blobs');
    await mkdir(blobs, { recursive: true });
    await writeFile(join(blobs, `${SHA256}.incomplete`), WEIGHTS.subarray(0, 1000));
    hub.fault = { kind: 'status', status: 503, times: 1 };
    const first = resolveWeights(TIMM_REF, options());
    await expect(first).resolves.toMatchObject({ size: WEIGHTS.length });
    expect(lfsRequests().map((r) => r.status)).toEqual([503, 206]);

    cacheDir = await freshCache();
    await mkdir(join(cacheDir, FOLDER, 'blobs'), { recursive: true });
    await writeFile(join(cacheDir, FOLDER, 'blobs', `${SHA256}.incomplete`), WEIGHTS.subarray(0, 1000));
    hub.requests.length = 0;
    hub.fault = { kind: 'ignore-range' };
    const resolved = await resolveWeights(TIMM_REF, options());
    expect(lfsRequests().map((r) => [r.range, r.status])).toEqual([['bytes=1000-', 200]]);
    expect(await sha256Of(resolved.path)).toBe(SHA256);
  });

  it('refuses bytes that do not match the sha256 and caches nothing of the file', async () => {
    hub.fault = { kind: 'wrong-bytes' };
    const failure = resolveWeights(TIMM_REF, options());
    await expect(failure).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    await expect(failure).rejects.toThrow(
      new RegExp(
        `^${TIMM_REF.replace(/\./g, '\\.')}: model\\.safetensors failed verification .*${SHA256}.*nothing was cached`,
      ),
    );
    const tree = await listTree(join(cacheDir, FOLDER));
    expect(tree.filter((path) => path.includes(SHA256) || path.includes('model.safetensors'))).toEqual([]);
    expect(tree.filter((path) => path.startsWith('refs/'))).toEqual([]);
  });

  it('throws away a corrupt partial file: verification covers the resumed bytes too', async () => {
    const blobs = join(cacheDir, FOLDER, 'blobs');
    await mkdir(blobs, { recursive: true });
    const corrupt = Uint8Array.from(WEIGHTS.subarray(0, 5000));
    corrupt[100] = (corrupt[100] as number) ^ 1;
    await writeFile(join(blobs, `${SHA256}.incomplete`), corrupt);
    await expect(resolveWeights(TIMM_REF, options())).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    expect(await listTree(blobs)).toEqual([CONFIG_OID]);
    const resolved = await resolveWeights(TIMM_REF, options());
    expect(await sha256Of(resolved.path)).toBe(SHA256);
  });
});

describe('resolveWeights: offline and caches written by Python', () => {
  it('offline: a cache hit works with no request; a miss names the reference and what is missing', async () => {
    await resolveWeights(TIMM_REF, options());
    hub.requests.length = 0;
    process.env.HF_HUB_OFFLINE = '1';
    try {
      const hit = await resolveWeights(TIMM_REF, options());
      expect(hit).toMatchObject({ origin: 'cache', pretrained: { architecture: 'vit_mock_patch8_32' } });
      const other = resolveWeights(`${TIMM_REF}@v2`, options());
      await expect(other).rejects.toMatchObject({ code: 'HUB_OFFLINE_MISS' });
      await expect(other).rejects.toThrow(
        `${TIMM_REF}@v2: offline (HF_HUB_OFFLINE or offline: true) and not in the cache ${cacheDir}: ` +
          `${join(cacheDir, FOLDER, 'refs', 'v2')} does not exist (revision "v2" was never downloaded)`,
      );
      const file = resolveWeights(`${TIMM_REF}:open_clip_model.safetensors`, options());
      await expect(file).rejects.toThrow(
        join(cacheDir, FOLDER, 'snapshots', hub.commitOf(TIMM_REPO), 'open_clip_model.safetensors'),
      );
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
    expect(hub.requests).toEqual([]);
  });

  it('uses a cache folder laid out by hand exactly as huggingface_hub writes it, with no request', async () => {
    // What `hf_hub_download("timm/…", f)` leaves: blobs named by etag, relative snapshot links, refs/main holding
    // the commit without a newline, and filelock's lock files left behind in .locks/.
    const commit = 'c0ffee'.padEnd(40, '0');
    const repoDir = join(cacheDir, FOLDER);
    await mkdir(join(repoDir, 'blobs'), { recursive: true });
    await mkdir(join(repoDir, 'snapshots', commit), { recursive: true });
    await mkdir(join(repoDir, 'refs'), { recursive: true });
    await mkdir(join(cacheDir, '.locks', FOLDER), { recursive: true });
    await writeFile(join(repoDir, 'blobs', SHA256), WEIGHTS);
    await writeFile(join(repoDir, 'blobs', CONFIG_OID), CONFIG_TEXT);
    await symlink(`../../blobs/${SHA256}`, join(repoDir, 'snapshots', commit, 'model.safetensors'));
    await symlink(`../../blobs/${CONFIG_OID}`, join(repoDir, 'snapshots', commit, 'config.json'));
    await writeFile(join(repoDir, 'refs', 'main'), commit);
    await writeFile(join(cacheDir, '.locks', FOLDER, `${SHA256}.lock`), '');

    const resolved = await resolveWeights(TIMM_REF, options({ endpoint: 'http://127.0.0.1:9' }));
    expect(resolved).toMatchObject({
      origin: 'cache',
      commit,
      path: join(repoDir, 'snapshots', commit, 'model.safetensors'),
      pretrained: { architecture: 'vit_mock_patch8_32', inputSize: [3, 32, 32] },
    });
    expect(hub.requests).toEqual([]);
  });

  it('with only the weights cached (timm.create_model downloads no config.json), fetches just config.json', async () => {
    const commit = hub.commitOf(TIMM_REPO);
    const repoDir = join(cacheDir, FOLDER);
    await mkdir(join(repoDir, 'blobs'), { recursive: true });
    await mkdir(join(repoDir, 'snapshots', commit), { recursive: true });
    await mkdir(join(repoDir, 'refs'), { recursive: true });
    await writeFile(join(repoDir, 'blobs', SHA256), WEIGHTS);
    await symlink(`../../blobs/${SHA256}`, join(repoDir, 'snapshots', commit, 'model.safetensors'));
    await writeFile(join(repoDir, 'refs', 'main'), commit);

    const offline = await resolveWeights(TIMM_REF, options({ offline: true }));
    expect(offline.pretrained).toBeUndefined();
    expect(hub.requests).toEqual([]);
    const online = await resolveWeights(TIMM_REF, options());
    expect(online).toMatchObject({ downloadedBytes: CONFIG_TEXT.length, pretrained: { numClasses: 10 } });
    expect(hub.requests.map((r) => r.url.split('?')[0])).toEqual([
      `/api/models/${TIMM_REPO}/paths-info/${commit}`,
      `/${TIMM_REPO}/resolve/${commit}/config.json`,
    ]);
  });

  it('records a file the repository lacks in .no_exist, as Python does, and answers offline from it', async () => {
    const missing = resolveWeights(`${TIMM_REF}:pytorch_model.bin`, options());
    await expect(missing).rejects.toMatchObject({ code: 'HUB_NOT_FOUND' });
    await expect(missing).rejects.toThrow(
      `${TIMM_REF}:pytorch_model.bin: file "pytorch_model.bin" is not in ${TIMM_REPO} at ${hub.commitOf(TIMM_REPO)}`,
    );
    const marker = join(cacheDir, FOLDER, '.no_exist', hub.commitOf(TIMM_REPO), 'pytorch_model.bin');
    expect(await readFile(marker, 'utf8')).toBe('');
    hub.requests.length = 0;
    const offline = resolveWeights(`${TIMM_REF}:pytorch_model.bin`, options({ offline: true }));
    await expect(offline).rejects.toMatchObject({ code: 'HUB_NOT_FOUND' });
    await expect(offline).rejects.toThrow(/recorded in the cache/);
    expect(hub.requests).toEqual([]);
  });
});

describe('progress', () => {
  it('draws a bar on a terminal and plain lines elsewhere, and nothing by default off a terminal', async () => {
    let tty = '';
    let plain = '';
    hub.fault = { kind: 'slow', chunkBytes: 200_000, delayMs: 40 };
    await resolveWeights(TIMM_REF, {
      ...options(),
      progress: progressBar({ write: (t: string) => (tty += t), isTTY: true }),
    });
    cacheDir = await freshCache();
    await resolveWeights(TIMM_REF, {
      ...options(),
      progress: progressBar({ write: (t: string) => (plain += t) }),
    });
    expect(tty).toMatch(/\rmodel\.safetensors \[#+\.*\] \d+% [\d.]+\/1\.2 MB/);
    expect(tty).toContain('100%');
    expect(plain).not.toContain('\r');
    expect(plain).toMatch(
      /^downloading model\.safetensors of timm:vit_mock_patch8_32\.tiny_in1k \(1\.2 MB\)\n/,
    );
    expect(plain).toMatch(/model\.safetensors of timm:\S+: 1\.2 MB, sha256 verified/);
    cacheDir = await freshCache();
    await resolveWeights(TIMM_REF, { endpoint: hub.endpoint, cacheDir }); // 'auto' under vitest: stderr is no TTY
  });
});
