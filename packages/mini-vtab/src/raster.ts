import type { Rng } from '@peftjs/core';

/**
 * A tiny RGB rasteriser for procedural images: shapes are filled by point-in-shape tests on a 4×4 sub-pixel grid,
 * so edges are anti-aliased and rendering is exact and seed-reproducible on every machine.
 */
export type Rgb = readonly [number, number, number];

/** A square RGB image with float channels in [0, 1], drawn by anti-aliased point-in-shape fills. */
export class Canvas {
  /** Interleaved RGB values in [0, 1], row-major: `size · size · 3` floats. */
  readonly pixels: Float32Array;

  constructor(
    /** Side of the square image, in pixels. */
    readonly size: number,
    background: Rgb,
  ) {
    this.pixels = new Float32Array(size * size * 3);
    for (let i = 0; i < size * size; i++) this.pixels.set(background, i * 3);
  }

  /** Blends `color` into every pixel by the fraction of its sub-samples for which `inside(x, y)` holds. */
  fill(
    inside: (x: number, y: number) => boolean,
    color: Rgb,
    bounds?: { x0: number; y0: number; x1: number; y1: number },
  ): void {
    const n = this.size;
    const x0 = Math.max(0, Math.floor(bounds?.x0 ?? 0));
    const y0 = Math.max(0, Math.floor(bounds?.y0 ?? 0));
    const x1 = Math.min(n - 1, Math.ceil(bounds?.x1 ?? n - 1));
    const y1 = Math.min(n - 1, Math.ceil(bounds?.y1 ?? n - 1));
    for (let py = y0; py <= y1; py++) {
      for (let px = x0; px <= x1; px++) {
        let hits = 0;
        for (let sy = 0; sy < 4; sy++) {
          for (let sx = 0; sx < 4; sx++) {
            if (inside(px + (sx + 0.5) / 4, py + (sy + 0.5) / 4)) hits++;
          }
        }
        if (hits === 0) continue;
        const a = hits / 16;
        const o = (py * n + px) * 3;
        for (let c = 0; c < 3; c++) {
          this.pixels[o + c] = (this.pixels[o + c] as number) * (1 - a) + (color[c] as number) * a;
        }
      }
    }
  }

  /** Adds uniform noise of amplitude `amount` (kept in [0, 1]). */
  noise(rng: Rng, amount: number): void {
    for (let i = 0; i < this.pixels.length; i++) {
      this.pixels[i] = Math.min(1, Math.max(0, (this.pixels[i] as number) + rng.uniform(-amount, amount)));
    }
  }

  /** 8-bit RGB bytes for PNG encoding. */
  toBytes(): Uint8Array {
    return Uint8Array.from(this.pixels, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
  }
}

export function randomColor(rng: Rng): Rgb {
  return [rng.float(), rng.float(), rng.float()];
}

/** A colour clearly different from `other` (Euclidean RGB distance ≥ 0.5), so shapes stay visible. */
export function contrastingColor(rng: Rng, other: Rgb): Rgb {
  for (;;) {
    const c = randomColor(rng);
    const d = Math.hypot(c[0] - other[0], c[1] - other[1], c[2] - other[2]);
    if (d >= 0.5) return c;
  }
}

export type ShapeKind = 'circle' | 'square' | 'triangle';
export const SHAPES: readonly ShapeKind[] = ['circle', 'square', 'triangle'];

/** Point-in-shape test for a shape of radius `r` at (cx, cy) rotated by `angle`. */
export function shapeTest(
  kind: ShapeKind,
  cx: number,
  cy: number,
  r: number,
  angle: number,
): (x: number, y: number) => boolean {
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  return (x, y) => {
    const dx = x - cx;
    const dy = y - cy;
    const u = dx * cos + dy * sin;
    const v = -dx * sin + dy * cos;
    switch (kind) {
      case 'circle':
        return u * u + v * v <= r * r;
      case 'square':
        return Math.abs(u) <= r * 0.85 && Math.abs(v) <= r * 0.85;
      case 'triangle': {
        // Equilateral triangle pointing up in its own frame.
        const h = r * 1.5;
        return v <= r * 0.5 && v >= r * 0.5 - h && Math.abs(u) <= (v - (r * 0.5 - h)) / Math.sqrt(3);
      }
    }
  };
}

/** An elongated bar (ellipse with axis ratio 4) at `angle`, the orientation task's object. */
export function barTest(
  cx: number,
  cy: number,
  length: number,
  angle: number,
): (x: number, y: number) => boolean {
  const a = length / 2;
  const b = length / 8;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  return (x, y) => {
    const dx = x - cx;
    const dy = y - cy;
    const u = dx * cos + dy * sin;
    const v = -dx * sin + dy * cos;
    return (u * u) / (a * a) + (v * v) / (b * b) <= 1;
  };
}
