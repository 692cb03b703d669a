import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeFileSetFs } from '@peftjs/core/internal';
import { faultyFs } from '@peftjs/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunFolder } from './run-folder.js';

/** What `peft train` writes when a run ends (results.json last, as a reader would check it). */
const OUTCOME: Record<string, string> = {
  'predictions.jsonl': `${Array.from({ length: 50 }, (_, i) => JSON.stringify({ index: i, predicted: i % 3 })).join('\n')}\n`,
  'report.md': '# run\n\n- test: top-1 **50.00 %**\n',
  'loss.png': 'not really a PNG, but bytes all the same',
  'results.json': `${JSON.stringify({ test: { top1: 0.5 } }, null, 2)}\n`,
};

async function writeOutcome(folder: RunFolder): Promise<void> {
  folder.stage();
  for (const [name, data] of Object.entries(OUTCOME)) await folder.writeFile(name, data);
  await folder.commit();
}

describe('a run folder', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'peftjs-run-folder-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes a run's outcome as one set: a kill or a full disk at any step leaves all of it or none", async () => {
    const real = await nodeFileSetFs();
    const probe = faultyFs(real, Number.POSITIVE_INFINITY, 'kill');
    await writeOutcome(new RunFolder(join(dir, 'probe'), probe));
    const steps = probe.calls;
    expect(steps).toBeGreaterThan(Object.keys(OUTCOME).length);
    const outcomes = new Set<string>();
    for (const mode of ['kill', 'fail'] as const) {
      for (let at = 0; at < steps; at++) {
        const path = join(dir, `${mode}-${at}`);
        const folder = new RunFolder(path, faultyFs(real, at, mode));
        await expect(writeOutcome(folder), `${mode} at step ${at}`).rejects.toThrow();
        // The next command on the folder (peft train --train.resume=true, a sweep's rerun) opens it.
        const next = new RunFolder(path);
        await next.create('test');
        await next.close();
        const names = (await readdir(path)).filter((n) => !n.startsWith('.peftjs-lock'));
        const present = Object.keys(OUTCOME).filter((n) => names.includes(n));
        expect(
          names.filter((n) => !(n in OUTCOME)),
          `${mode} at ${at}: leftovers`,
        ).toEqual([]);
        expect([0, Object.keys(OUTCOME).length], `${mode} at ${at}: ${present.join(', ')}`).toContain(
          present.length,
        );
        for (const name of present) expect(await readFile(join(path, name), 'utf8')).toBe(OUTCOME[name]);
        outcomes.add(present.length === 0 ? 'none' : 'all');
      }
    }
    // Both ends are reachable: a fault before the commit point loses the outcome, one after it keeps it whole.
    expect([...outcomes].sort()).toEqual(['all', 'none']);
  });

  it('refuses to commit what was not staged, and to stage twice', async () => {
    const folder = new RunFolder(join(dir, 'misuse'));
    await expect(folder.commit()).rejects.toThrow(/nothing staged/);
    folder.stage();
    expect(() => folder.stage()).toThrow(/already staged/);
  });
});
