import type { FileHandle } from 'node:fs/promises';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { resolveWeights } from './resolve.js';
import {
  TIMM_REF,
  freshCache,
  isolateEnvironment,
  listTree,
  mockRepos,
  weightsBytes,
} from './test-support.js';
import { MockHub } from './testing/mock-hub.js';

/** The injected filesystem failure: writes to `*.incomplete` fail with ENOSPC past `room` bytes; statfs lies. */
const disk = vi.hoisted(() => ({
  room: Number.POSITIVE_INFINITY,
  written: 0,
  free: undefined as number | undefined,
}));

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  return {
    ...actual,
    statfs: async (path: string) => {
      const stats = await actual.statfs(path);
      return disk.free === undefined ? stats : { ...stats, bavail: Math.floor(disk.free / stats.bsize) };
    },
    open: async (path: string, flags?: string) => {
      const handle: FileHandle = await actual.open(path, flags);
      if (!String(path).endsWith('.incomplete')) return handle;
      const write = handle.write.bind(handle) as (chunk: Uint8Array) => Promise<unknown>;
      return Object.assign(handle, {
        write: async (chunk: Uint8Array) => {
          const fits = Math.max(0, Math.min(chunk.length, disk.room - disk.written));
          if (fits > 0) await write(chunk.subarray(0, fits));
          disk.written += fits;
          if (fits < chunk.length) throw enospc();
          return { bytesWritten: fits, buffer: chunk };
        },
      });
    },
  };
});

const WEIGHTS = weightsBytes(100_000);
let hub: MockHub;
let cacheDir: string;

beforeAll(async () => {
  await isolateEnvironment();
  hub = await MockHub.start({ repos: mockRepos(WEIGHTS) });
});
afterAll(() => hub.close());
beforeEach(async () => {
  cacheDir = await freshCache();
  hub.requests.length = 0;
  Object.assign(disk, { room: Number.POSITIVE_INFINITY, written: 0, free: undefined });
});

describe('disk full', () => {
  it('ENOSPC while writing: one DISK_FULL error naming the reference; the partial file resumes later', async () => {
    disk.room = 150_000;
    const failure = resolveWeights(TIMM_REF, { endpoint: hub.endpoint, cacheDir, progress: false });
    await expect(failure).rejects.toMatchObject({ code: 'DISK_FULL' });
    const folder = join(cacheDir, 'models--timm--vit_mock_patch8_32.tiny_in1k');
    const partial = (await listTree(join(folder, 'blobs'))).find((f) => f.endsWith('.incomplete')) ?? '?';
    const kept = (await fs.stat(join(folder, 'blobs', partial))).size;
    expect(kept).toBeGreaterThan(100_000);
    await expect(failure).rejects.toThrow(
      `${TIMM_REF}: disk full writing model.safetensors (${WEIGHTS.length} bytes) into ${cacheDir}: ` +
        'ENOSPC: no space left on device, write. Free space or point HF_HUB_CACHE at a larger disk; the ' +
        `${kept} bytes already fetched stay in ${join(folder, 'blobs', partial)} and the download resumes there`,
    );
    expect(
      (await listTree(folder)).filter((f) => f.includes('snapshots/') && f.endsWith('model.safetensors')),
    ).toEqual([]);
    expect(hub.requests.filter((r) => r.server === 'lfs')).toHaveLength(1);

    disk.room = Number.POSITIVE_INFINITY;
    hub.requests.length = 0;
    const resolved = await resolveWeights(TIMM_REF, { endpoint: hub.endpoint, cacheDir, progress: false });
    expect(hub.requests.filter((r) => r.server === 'lfs').map((r) => r.range)).toEqual([`bytes=${kept}-`]);
    expect(Buffer.compare(await fs.readFile(resolved.path), WEIGHTS)).toBe(0);
  });

  it('too little free space is refused before the transfer starts', async () => {
    disk.free = 1000;
    const failure = resolveWeights(TIMM_REF, { endpoint: hub.endpoint, cacheDir, progress: false });
    await expect(failure).rejects.toMatchObject({ code: 'DISK_FULL' });
    await expect(failure).rejects.toThrow(
      new RegExp(
        `^${TIMM_REF.replace(/\./g, '\\.')}: disk full writing (config\\.json|model\\.safetensors) .*needed, \\d+ free`,
      ),
    );
    expect(hub.requests.filter((r) => r.server === 'lfs')).toEqual([]);
  });
});
