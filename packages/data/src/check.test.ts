import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PeftError } from '@peftjs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertSplitValid, checkIdxDataset, checkSplit } from './check.js';
import { readImageFolder } from './image-folder.js';
import { readListFile, readVtabTask } from './lists.js';
import type { Split } from './split.js';
import { RED, tempDir, writeRandomBytes, writeSolidPng, writeVtabTask } from './test-support.js';

let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  await writeVtabTask(dir, 'mini');
  await writeRandomBytes(join(dir, 'mini/images/corrupt.png'), 300);
});
afterAll(() => cleanup());

async function listOf(text: string, numClasses = 10): Promise<{ file: string; split: Split }> {
  const file = join(dir, 'mini', 'train800.txt');
  await writeFile(file, text);
  return { file, split: await readListFile(file, { numClasses }) };
}

describe('checkSplit', () => {
  it('passes a clean split, decoding every image', async () => {
    const task = await readVtabTask(dir, 'mini');
    for (const split of Object.values(task.splits)) {
      expect(await checkSplit(split, { decode: true, imageSize: [4, 4] })).toEqual({
        ok: true,
        problems: [],
      });
    }
  });

  it('reports each problem with its file, line and exact message', async () => {
    const { file, split } = await listOf(
      [
        'images/img0.png 0',
        'images/img1.png',
        'images/img2.png 12',
        'images/img3.png x',
        'images/missing.png 1',
        'images/img0.png 4',
        'images/corrupt.png 2',
        'images/img5.png -1',
      ].join('\n'),
    );
    const progress: number[] = [];
    const result = await checkSplit(split, {
      decode: true,
      onProgress: (done, total) => progress.push(done / total),
    });
    // Two of the eight lines do not parse into samples; the six samples report progress.
    expect(progress).toEqual([1, 2, 3, 4, 5, 6].map((n) => n / 6));
    expect(result.ok).toBe(false);
    const img = (name: string) => join(dir, 'mini/images', name);
    expect(result.problems.map((p) => ({ ...p, message: p.message.split(': not a PNG')[0] }))).toEqual([
      { file, line: 2, message: 'malformed line, expected "path label" but got 1 fields: "images/img1.png"' },
      { file, line: 3, message: 'label 12 out of range [0, 10)' },
      { file, line: 4, message: 'label "x" is not an integer' },
      { file, line: 5, message: `image file not found: ${img('missing.png')}` },
      { file, line: 6, message: `duplicate entry ${img('img0.png')} (first listed at line 1)` },
      { file, line: 7, message: `corrupt or unreadable image ${img('corrupt.png')}` },
      { file, line: 8, message: 'label -1 out of range [0, 10)' },
    ]);
    expect(result.problems[5]?.message).toMatch(
      /: not a PNG, JPEG, GIF, WebP, TIFF or BMP file: it starts with /,
    );
  });

  it('does not decode unless asked', async () => {
    const { split } = await listOf('images/corrupt.png 1\n');
    expect((await checkSplit(split)).ok).toBe(true);
    expect((await checkSplit(split, { decode: true, imageSize: [4, 4], channels: 1 })).ok).toBe(false);
  });

  it('reports an empty split and negative labels when the class count is unknown', async () => {
    const { file, split } = await listOf('\n\n', 10);
    expect((await checkSplit(split)).problems).toEqual([
      { file, message: 'split "train800" has no samples' },
    ]);
    const unknown: Split = {
      name: 'custom',
      samples: [{ path: join(dir, 'mini/images/img0.png'), label: -2 }],
    };
    expect((await checkSplit(unknown)).problems).toEqual([
      { file: join(dir, 'mini/images/img0.png'), message: 'label -2 is negative' },
    ]);
  });

  it('names image files directly for folder splits', async () => {
    await writeSolidPng(join(dir, 'folder/cat/a.png'), 2, RED);
    await writeRandomBytes(join(dir, 'folder/dog/b.png'), 64);
    const split = await readImageFolder(join(dir, 'folder'));
    const { problems } = await checkSplit(split, { decode: true });
    expect(problems).toHaveLength(1);
    expect(problems[0]?.file).toBe(join(dir, 'folder/dog/b.png'));
    expect(problems[0]?.line).toBeUndefined();
  });
});

describe('assertSplitValid', () => {
  it('throws one INVALID_CONFIG error quoting file:line problems and the total', async () => {
    const lines = Array.from({ length: 25 }, (_, i) => `images/img${i % 10}.png ${20 + i}`);
    const { file, split } = await listOf(lines.join('\n'));
    const error = await assertSplitValid(split).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PeftError);
    expect((error as PeftError).code).toBe('INVALID_CONFIG');
    const message = (error as PeftError).message;
    expect(message).toMatch(/^split "train800" \(.*train800\.txt\) failed data checks \(40 problems\):\n/);
    expect(message).toContain(`\n  ${file}:3: label 22 out of range [0, 10)\n`);
    expect(message.split('\n')).toHaveLength(1 + 20 + 1);
    expect(message).toMatch(/… and 20 more$/);
  });

  it('resolves for a valid split', async () => {
    const task = await readVtabTask(dir, 'mini');
    await expect(assertSplitValid(task.splits.test)).resolves.toBeUndefined();
  });
});

describe('checkIdxDataset', () => {
  it('quotes the first 20 bad labels with their index, then counts the rest', () => {
    const labels = Int32Array.from({ length: 30 }, (_, i) => (i < 25 ? -1 : 0));
    const idx = {
      count: 30,
      height: 1,
      width: 1,
      images: new Uint8Array(30),
      labels,
      numClasses: 1,
      files: { images: 'i.idx', labels: 'l.idx' },
    };
    const { ok, problems } = checkIdxDataset(idx);
    expect(ok).toBe(false);
    expect(problems).toHaveLength(21);
    expect(problems[0]).toEqual({ file: 'l.idx', message: 'label -1 at index 0 is negative' });
    expect(problems[20]).toEqual({ file: 'l.idx', message: '… and 5 more labels outside [0, 1)' });
    expect(checkIdxDataset({ ...idx, labels: new Int32Array(30) })).toEqual({ ok: true, problems: [] });
  });
});
