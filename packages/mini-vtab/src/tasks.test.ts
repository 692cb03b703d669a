import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '@peftjs/core';
import { describe, expect, it } from 'vitest';
import { generateTask } from './generate.js';
import type { Canvas } from './raster.js';
import { PROCEDURAL_TASKS } from './tasks.js';

const task = (name: string) => PROCEDURAL_TASKS.find((t) => t.name === name)!;

/** Pixels that differ from the corner (background) colour by more than a noise margin. */
function foreground(canvas: Canvas): boolean[] {
  const n = canvas.size;
  const bg = [0, 1, 2].map((c) => canvas.pixels[c] as number);
  return Array.from({ length: n * n }, (_, i) => {
    const d = Math.hypot(...[0, 1, 2].map((c) => (canvas.pixels[i * 3 + c] as number) - (bg[c] as number)));
    return d > 0.3;
  });
}

function components(mask: boolean[], n: number): number {
  const seen = new Uint8Array(mask.length);
  let count = 0;
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || seen[start]) continue;
    count++;
    const stack = [start];
    seen[start] = 1;
    while (stack.length > 0) {
      const p = stack.pop() as number;
      const x = p % n;
      const y = Math.floor(p / n);
      for (const [dx, dy] of [
        [1, 0],
        [-1, 0],
        [0, 1],
        [0, -1],
        [1, 1],
        [1, -1],
        [-1, 1],
        [-1, -1],
      ] as const) {
        const nx = x + dx;
        const ny = y + dy;
        const q = ny * n + nx;
        if (nx >= 0 && ny >= 0 && nx < n && ny < n && mask[q] && !seen[q]) {
          seen[q] = 1;
          stack.push(q);
        }
      }
    }
  }
  return count;
}

describe('procedural mini-VTAB tasks', () => {
  it('count: the image holds exactly label + 1 separate objects', () => {
    for (let i = 0; i < 40; i++) {
      const label = i % 8;
      const canvas = task('count').render(new Rng(i), label, 64);
      expect(components(foreground(canvas), 64), `sample ${i}`).toBe(label + 1);
    }
  });

  it('position: the object lies in the labelled cell of the 4×4 grid', () => {
    for (let label = 0; label < 16; label++) {
      const canvas = task('position').render(new Rng(`p${label}`), label, 64);
      const mask = foreground(canvas);
      let sx = 0;
      let sy = 0;
      let n = 0;
      mask.forEach((on, i) => {
        if (!on) return;
        sx += i % 64;
        sy += Math.floor(i / 64);
        n++;
      });
      expect(Math.floor(sx / n / 16) + 4 * Math.floor(sy / n / 16), `label ${label}`).toBe(label);
    }
  });

  it('size: larger labels draw larger objects', () => {
    const areas = [0, 5].map((label) => {
      let total = 0;
      for (let i = 0; i < 10; i++)
        total += foreground(task('size').render(new Rng(`s${i}`), label, 64)).filter(Boolean).length;
      return total / 10;
    });
    expect(areas[1]).toBeGreaterThan((areas[0] as number) * 4);
  });

  it('writes the VTAB-1k layout deterministically with balanced labels and disjoint splits', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mini-vtab-'));
    const other = await mkdtemp(join(tmpdir(), 'mini-vtab-'));
    try {
      const counts = { train800: 24, val200: 8, test: 16 };
      const folder = await generateTask('orientation', { root, seed: 5, counts });
      await generateTask('orientation', { root: other, seed: 5, counts });
      const files = (await readdir(folder)).sort();
      expect(files).toEqual([
        'images',
        'task.json',
        'test.txt',
        'train800.txt',
        'train800val200.txt',
        'val200.txt',
      ]);
      const lines = async (dir: string, name: string) =>
        (await readFile(join(dir, name), 'utf8')).trim().split('\n');
      const train = await lines(folder, 'train800.txt');
      expect(train).toHaveLength(24);
      expect(await lines(folder, 'train800val200.txt')).toEqual([
        ...train,
        ...(await lines(folder, 'val200.txt')),
      ]);
      const labels = train.map((l) => Number(l.split(' ')[1]));
      for (let c = 0; c < 8; c++) expect(labels.filter((l) => l === c)).toHaveLength(3);
      const bytes = (dir: string, path: string) => readFile(join(dir, 'orientation', path));
      expect(await bytes(root, 'images/test/3.png')).toEqual(await bytes(other, 'images/test/3.png'));
      expect(await bytes(root, 'images/test/3.png')).not.toEqual(await bytes(root, 'images/train800/3.png'));
    } finally {
      await rm(root, { recursive: true, force: true });
      await rm(other, { recursive: true, force: true });
    }
  });

  it('names the missing source of a real-data task', async () => {
    await expect(
      generateTask('optdigits', { root: tmpdir(), sources: { optdigits: '/nonexistent/digits.csv.gz' } }),
    ).rejects.toThrow(/optdigits needs \/nonexistent\/digits\.csv\.gz/);
    await expect(generateTask('imagenet', { root: tmpdir() })).rejects.toThrow(
      /unknown mini-VTAB task "imagenet"/,
    );
  });
});
