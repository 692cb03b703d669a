import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FileSetFs, nodeFileSetFs, readFileSet, recoverFileSet, writeFileSet } from './file-set.js';
import { faultyFs as faulty } from './testing/faults.js';

const generation = (tag: string) => [
  { name: 'adapter_config.json', data: `{"generation":"${tag}"}\n` },
  { name: 'adapter_model.safetensors', data: new TextEncoder().encode(`weights of ${tag} `.repeat(200)) },
  { name: 'report.md', data: `# report ${tag}\n` },
];

async function readAll(dir: string): Promise<Record<string, string | null>> {
  const names = generation('x').map((f) => f.name);
  const files = await readFileSet(dir, names);
  return Object.fromEntries(
    names.map((n) => [n, files.get(n) ? new TextDecoder().decode(files.get(n) as Uint8Array) : null]),
  );
}

const expected = (tag: string) =>
  Object.fromEntries(
    generation(tag).map((f) => [
      f.name,
      typeof f.data === 'string' ? f.data : new TextDecoder().decode(f.data),
    ]),
  );

describe('file sets: one generation replaced as a whole', () => {
  let root: string;
  let real: FileSetFs;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'peftjs-file-set-'));
    real = await nodeFileSetFs();
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes and reads a set, replacing an older one', async () => {
    const dir = join(root, 'plain');
    await writeFileSet(dir, generation('a'));
    expect(await readAll(dir)).toEqual(expected('a'));
    await writeFileSet(dir, generation('b'));
    expect(await readAll(dir)).toEqual(expected('b'));
    expect((await readdir(dir)).sort()).toEqual(
      generation('b')
        .map((f) => f.name)
        .sort(),
    );
  });

  it('a fault at any filesystem call leaves the old or the new generation, never neither, never a mix', async () => {
    const probe = faulty(real, Number.POSITIVE_INFINITY, 'kill');
    await writeFileSet(join(root, 'count'), generation('a'), { fs: probe });
    const before = probe.calls;
    await writeFileSet(join(root, 'count'), generation('b'), { fs: probe });
    const steps = probe.calls - before;
    expect(steps).toBeGreaterThan(10);
    const outcomes = new Set<string>();
    for (const mode of ['kill', 'fail'] as const) {
      for (let at = 0; at < steps; at++) {
        const dir = join(root, `${mode}-${at}`);
        await writeFileSet(dir, generation('old'));
        const fs = faulty(real, at, mode);
        const failed = await writeFileSet(dir, generation('new'), { fs }).then(
          () => false,
          () => true,
        );
        expect(failed, `${mode} at call ${at} must surface as an error`).toBe(true);
        const seen = await readAll(dir);
        const which = JSON.stringify(seen) === JSON.stringify(expected('old')) ? 'old' : 'new';
        expect(seen, `${mode} at call ${at}`).toEqual(expected(which));
        outcomes.add(`${mode}:${which}`);
        // The next save finishes or discards what was left, and leaves no stray file behind.
        await writeFileSet(dir, generation('next'));
        expect(await readAll(dir)).toEqual(expected('next'));
        expect((await readdir(dir)).sort()).toEqual(
          generation('next')
            .map((f) => f.name)
            .sort(),
        );
      }
    }
    // Both outcomes occur: early faults keep the old generation, faults after the commit point the new one.
    expect([...outcomes].sort()).toEqual(['fail:new', 'fail:old', 'kill:new', 'kill:old']);
  });

  it('recovery removes stale temporary files of interrupted atomic writes', async () => {
    const dir = join(root, 'stale');
    await writeFileSet(dir, generation('a'));
    await writeFile(join(dir, '.peftjs-tmp-results.json-abc123'), 'half');
    await writeFile(join(dir, 'report.md.peftjs-next'), 'uncommitted');
    expect(await readAll(dir)).toEqual(expected('a'));
    await recoverFileSet(dir);
    expect((await readdir(dir)).sort()).toEqual(
      generation('a')
        .map((f) => f.name)
        .sort(),
    );
  });

  it('refuses names that could escape the folder or collide', async () => {
    await expect(writeFileSet(join(root, 'bad'), [{ name: '../x', data: '' }])).rejects.toThrow(
      /invalid or repeated/,
    );
    await expect(
      writeFileSet(join(root, 'bad'), [
        { name: 'a', data: '' },
        { name: 'a', data: '' },
      ]),
    ).rejects.toThrow(/invalid or repeated file name "a"/);
  });
});
