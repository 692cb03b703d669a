import type { Rng } from '@peftjs/core';
import { Canvas, SHAPES, barTest, contrastingColor, randomColor, shapeTest } from './raster.js';

/**
 * The procedural mini-VTAB tasks. Each renders one labelled 32×32 RGB image from a seeded stream, in the spirit of
 * VTAB's structured group (clevr_count, dsprites_loc/ori, clevr_dist) and a texture task standing in for the
 * specialised group. Random colours, backgrounds, noise and distractor parameters keep pixel shortcuts weak.
 */
export interface ProceduralTask {
  /** Task name (folder and `generateTask` argument). */
  readonly name: string;
  /** The VTAB group the task imitates. */
  readonly group: 'natural' | 'specialized' | 'structured';
  /** Number of classes; `render` accepts labels 0 … numClasses − 1. */
  readonly numClasses: number;
  /** What the images show and what the label means. */
  readonly description: string;
  /** Draws one `size × size` image of class `label`, using only `rng` for randomness. */
  render(rng: Rng, label: number, size: number): Canvas;
}

const TAU = Math.PI * 2;

/** Non-negative remainder (JS `%` keeps the sign of the dividend). */
function mod(a: number, p: number): number {
  return ((a % p) + p) % p;
}

/** One shape of a random kind, angle and contrasting colour (the draw order of the stream is part of the seed contract). */
function drawShape(
  rng: Rng,
  canvas: Canvas,
  background: readonly [number, number, number],
  x: number,
  y: number,
  r: number,
  bounds?: { x0: number; y0: number; x1: number; y1: number },
): void {
  const kind = SHAPES[rng.int(SHAPES.length)] ?? 'circle';
  canvas.fill(shapeTest(kind, x, y, r, rng.uniform(0, TAU)), contrastingColor(rng, background), bounds);
}

function placeShapes(
  rng: Rng,
  canvas: Canvas,
  count: number,
  background: readonly [number, number, number],
  radius: [number, number],
): void {
  const placed: { x: number; y: number; r: number }[] = [];
  const n = canvas.size;
  let scale = 1;
  let failures = 0;
  while (placed.length < count) {
    const r = rng.uniform(radius[0], radius[1]) * scale;
    // A square's corners reach 1.21 r: keep every pair of objects at least 2 px apart, so each can be counted.
    const reach = r * 1.21;
    const x = rng.uniform(reach + 1, n - reach - 1);
    const y = rng.uniform(reach + 1, n - reach - 1);
    if (placed.some((p) => Math.hypot(p.x - x, p.y - y) < p.r * 1.21 + reach + 2)) {
      // Crowded: shrink the remaining objects rather than ever letting two overlap.
      if (++failures % 200 === 0) scale *= 0.9;
      continue;
    }
    placed.push({ x, y, r });
    drawShape(rng, canvas, background, x, y, r, {
      x0: x - r * 1.6,
      y0: y - r * 1.6,
      x1: x + r * 1.6,
      y1: y + r * 1.6,
    });
  }
}

/** Every procedural task, in listing order. */
export const PROCEDURAL_TASKS: readonly ProceduralTask[] = [
  {
    name: 'count',
    group: 'structured',
    numClasses: 8,
    description: 'number of shapes (1–8), random kinds, sizes, colours (clevr_count-like)',
    render(rng, label, size) {
      const background = randomColor(rng);
      const canvas = new Canvas(size, background);
      placeShapes(rng, canvas, label + 1, background, [size * 0.06, size * 0.1]);
      canvas.noise(rng, 0.05);
      return canvas;
    },
  },
  {
    name: 'position',
    group: 'structured',
    numClasses: 16,
    description: 'position of one shape on a 4×4 grid of cells (dsprites_loc-like)',
    render(rng, label, size) {
      const background = randomColor(rng);
      const canvas = new Canvas(size, background);
      const cell = size / 4;
      const r = rng.uniform(size * 0.06, size * 0.1);
      const x = (label % 4) * cell + rng.uniform(Math.min(r, cell / 2), Math.max(cell - r, cell / 2));
      const y =
        Math.floor(label / 4) * cell + rng.uniform(Math.min(r, cell / 2), Math.max(cell - r, cell / 2));
      drawShape(rng, canvas, background, x, y, r);
      canvas.noise(rng, 0.05);
      return canvas;
    },
  },
  {
    name: 'orientation',
    group: 'structured',
    numClasses: 8,
    description: 'orientation of a bar in 8 bins over 180° (dsprites_ori-like)',
    render(rng, label, size) {
      const background = randomColor(rng);
      const canvas = new Canvas(size, background);
      const angle = ((label + rng.uniform(0.1, 0.9)) / 8) * Math.PI;
      const length = rng.uniform(size * 0.45, size * 0.75);
      const cx = rng.uniform(size * 0.35, size * 0.65);
      const cy = rng.uniform(size * 0.35, size * 0.65);
      canvas.fill(barTest(cx, cy, length, angle), contrastingColor(rng, background));
      canvas.noise(rng, 0.05);
      return canvas;
    },
  },
  {
    name: 'size',
    group: 'structured',
    numClasses: 6,
    description: 'size of one shape in 6 bins, with distractor-free scenes (clevr_dist-like)',
    render(rng, label, size) {
      const background = randomColor(rng);
      const canvas = new Canvas(size, background);
      const r = size * (0.06 + (label + rng.uniform(0.15, 0.85)) * 0.05);
      const x = rng.uniform(r + 1, size - r - 1);
      const y = rng.uniform(r + 1, size - r - 1);
      drawShape(rng, canvas, background, x, y, r);
      canvas.noise(rng, 0.05);
      return canvas;
    },
  },
  {
    name: 'texture',
    group: 'specialized',
    numClasses: 6,
    description:
      'texture family: stripes, checkerboard, dots, waves, grid, blobs at random scale/rotation/colours',
    render(rng, label, size) {
      const a = randomColor(rng);
      const b = contrastingColor(rng, a);
      const canvas = new Canvas(size, a);
      const period = rng.uniform(0.12, 0.3) * size;
      const angle = rng.uniform(0, Math.PI);
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      const phase = rng.uniform(0, period);
      const rot = (x: number, y: number) => [x * cos + y * sin + phase, -x * sin + y * cos + phase] as const;
      const blobs = Array.from({ length: 7 }, () => [
        rng.uniform(0, size),
        rng.uniform(0, size),
        rng.uniform(0.06, 0.14) * size,
      ]);
      const tests: ((x: number, y: number) => boolean)[] = [
        (x, y) => mod(rot(x, y)[0], period) < period / 2,
        (x, y) => {
          const [u, v] = rot(x, y);
          return (Math.floor(u / period) + Math.floor(v / period)) % 2 === 0;
        },
        (x, y) => {
          const [u, v] = rot(x, y);
          const du = mod(u, period) - period / 2;
          const dv = mod(v, period) - period / 2;
          return du * du + dv * dv < (period / 3.2) ** 2;
        },
        (x, y) => {
          const [u, v] = rot(x, y);
          return Math.sin((u / period) * TAU + Math.sin((v / period) * Math.PI) * 2) > 0;
        },
        (x, y) => {
          const [u, v] = rot(x, y);
          return mod(u, period) < period * 0.25 || mod(v, period) < period * 0.25;
        },
        (x, y) =>
          blobs.some(([bx, by, r]) => Math.hypot(x - (bx as number), y - (by as number)) < (r as number)),
      ];
      canvas.fill(tests[label] as (x: number, y: number) => boolean, b);
      canvas.noise(rng, 0.05);
      return canvas;
    },
  },
];
