import { PeftError, invalidOption } from '@peftjs/core';
import { requireSquareMatrix, requireStarts } from './validate.js';

/** Options of `affinityHeatmapPng`; invalid values throw `INVALID_OPTION`. */
export interface HeatmapOptions {
  /** Pixels per matrix cell (square). Default 24. */
  cellSize?: number;
  /** Value range mapped onto the colour map; default the matrix minimum and maximum. */
  range?: readonly [number, number];
}

/** RGB of the hierarchy boundary lines: pure red, which the viridis-like map never produces. */
export const HEATMAP_BOUNDARY_COLOR: readonly [number, number, number] = [255, 0, 0];

/** Viridis-like anchors (dark purple → blue → green → yellow), interpolated linearly in RGB. */
const COLOR_STOPS: readonly (readonly [number, number, number])[] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

/** Colour of `t ∈ [0, 1]` (clamped) on the viridis-like map. */
export function heatmapColor(t: number): [number, number, number] {
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (COLOR_STOPS.length - 1);
  const i = Math.min(COLOR_STOPS.length - 2, Math.floor(u));
  const f = u - i;
  const a = COLOR_STOPS[i] as readonly [number, number, number];
  const b = COLOR_STOPS[i + 1] as readonly [number, number, number];
  return [0, 1, 2].map((c) => Math.round((a[c] as number) + f * ((b[c] as number) - (a[c] as number)))) as [
    number,
    number,
    number,
  ];
}

/**
 * A PNG of the affinity matrix (row i, column j = cell at y = i, x = j; low values dark, high values bright) with
 * red lines at every hierarchy boundary, i.e. just before each start > 0, on both axes. The image is exactly
 * `L · cellSize` pixels square; lines are drawn over the cells next to the boundary. Asynchronous because it loads
 * pngjs (Node only) on first use; invalid input rejects with a `PeftError`.
 */
export async function affinityHeatmapPng(
  affinity: number[][],
  starts: number[],
  options: HeatmapOptions = {},
): Promise<Uint8Array> {
  const layers = requireSquareMatrix('affinity', affinity);
  const bounds = requireStarts('starts', starts, layers);
  const cell = options.cellSize ?? 24;
  if (!Number.isInteger(cell) || cell < 1 || cell > 512)
    invalidOption('cellSize', cell, 'an integer in [1, 512]');
  let low = Number.POSITIVE_INFINITY;
  let high = Number.NEGATIVE_INFINITY;
  for (const row of affinity) {
    for (const v of row) {
      low = Math.min(low, v);
      high = Math.max(high, v);
    }
  }
  if (options.range !== undefined) {
    const [a, b] = options.range;
    if (!Number.isFinite(a) || !Number.isFinite(b) || !(a < b)) {
      throw new PeftError(
        'INVALID_OPTION',
        `option "range" must be two finite numbers [low, high] with low < high`,
      );
    }
    low = a;
    high = b;
  }
  const size = layers * cell;
  // pngjs needs Node's zlib and stream: loaded on use so the package imports in browsers and bundles cleanly.
  const { PNG } = await import('pngjs');
  const png = new PNG({ width: size, height: size, colorType: 6 });
  const paint = (px: number, py: number, rgb: readonly [number, number, number]) => {
    const o = (py * size + px) * 4;
    png.data[o] = rgb[0];
    png.data[o + 1] = rgb[1];
    png.data[o + 2] = rgb[2];
    png.data[o + 3] = 255;
  };
  for (let i = 0; i < layers; i++) {
    for (let j = 0; j < layers; j++) {
      const v = (affinity[i] as number[])[j] as number;
      // A constant matrix has no spread: show it in the middle of the map.
      const rgb = heatmapColor(high > low ? (v - low) / (high - low) : 0.5);
      for (let y = i * cell; y < (i + 1) * cell; y++)
        for (let x = j * cell; x < (j + 1) * cell; x++) paint(x, y, rgb);
    }
  }
  const thickness = Math.max(1, Math.floor(cell / 12));
  for (const s of bounds) {
    if (s === 0) continue;
    const from = s * cell - Math.floor(thickness / 2);
    for (let p = from; p < from + thickness; p++) {
      for (let q = 0; q < size; q++) {
        paint(p, q, HEATMAP_BOUNDARY_COLOR);
        paint(q, p, HEATMAP_BOUNDARY_COLOR);
      }
    }
  }
  const buffer = PNG.sync.write(png);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}
