import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@peftjs/core';
import { nodeFileSetFs } from '@peftjs/core/internal';
import { faultyFs } from '@peftjs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { createOptimizer } from './optimizers.js';
import { tinyModel } from '@peftjs/test-fixtures';

describe('checkpoint saves under faults', () => {
  let dir: string;
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm', log: false });
    dir = await mkdtemp(join(tmpdir(), 'peftjs-ckpt-faults-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a kill or a full disk at any step of a save leaves the previous checkpoint or the new one, whole', async () => {
    const tiny = tinyModel({ prompt: true });
    const optimizer = createOptimizer('adamw', { lr: 0.01 });
    const info = (epochs: number) => ({
      epochsCompleted: epochs,
      globalStep: epochs * 4,
      forwardCounter: epochs * 4,
      shuffle: { seed: 1, nextEpoch: epochs },
      history: [],
      best: null,
      bestMetrics: null,
      options: { epochs: 10 } as never,
    });
    const real = await nodeFileSetFs();
    const probe = faultyFs(real, Number.POSITIVE_INFINITY, 'kill');
    await writeCheckpoint(join(dir, 'probe'), tiny.model, optimizer, info(1), null, probe);
    const before = probe.calls;
    await writeCheckpoint(join(dir, 'probe'), tiny.model, optimizer, info(2), null, probe);
    const steps = probe.calls - before;
    const seen = new Set<string>();
    for (const mode of ['kill', 'fail'] as const) {
      for (let at = 0; at < steps; at++) {
        const folder = join(dir, `${mode}-${at}`);
        await writeCheckpoint(folder, tiny.model, optimizer, info(1), null);
        const failed = await writeCheckpoint(
          folder,
          tiny.model,
          optimizer,
          info(2),
          null,
          faultyFs(real, at, mode),
        ).then(
          () => false,
          () => true,
        );
        expect(failed).toBe(true);
        const { info: read } = await readCheckpoint(folder);
        expect([1, 2], `${mode} at ${at}`).toContain(read.epochsCompleted);
        seen.add(`${mode}:${read.epochsCompleted}`);
        // The next save succeeds and tidies the folder.
        await writeCheckpoint(folder, tiny.model, optimizer, info(3), null);
        expect((await readCheckpoint(folder)).info.epochsCompleted).toBe(3);
        expect((await readdir(folder)).sort()).toEqual(['checkpoint.json', 'checkpoint.safetensors']);
      }
    }
    expect([...seen].sort()).toEqual(['fail:1', 'fail:2', 'kill:1', 'kill:2']);
    optimizer.dispose();
    tiny.dispose();
  });
});
