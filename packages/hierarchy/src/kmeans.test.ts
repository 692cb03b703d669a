import { PeftError, Rng } from '@peftjs/core';
import { describe, expect, it } from 'vitest';
import { kmeans } from './kmeans.js';

/** `perCluster` points around each of `centers` (dims = centers[0].length) with uniform noise in ±noise. */
function blobs(centers: number[][], perCluster: number, noise: number, rng: Rng) {
  const dims = (centers[0] as number[]).length;
  const rows = centers.length * perCluster;
  const data = new Float32Array(rows * dims);
  const truth: number[] = [];
  // Interleave clusters so the partition does not follow row order.
  for (let i = 0; i < rows; i++) {
    const c = i % centers.length;
    truth.push(c);
    for (let j = 0; j < dims; j++)
      data[i * dims + j] = ((centers[c] as number[])[j] as number) + rng.uniform(-noise, noise);
  }
  return { data, rows, dims, truth };
}

function samePartition(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) {
    for (let j = i + 1; j < a.length; j++) if ((a[i] === a[j]) !== (b[i] === b[j])) return false;
  }
  return true;
}

describe('kmeans', () => {
  it('recovers well-separated clusters exactly', () => {
    const centers = [
      [0, 0, 0, 0, 0],
      [100, 0, 0, 0, 0],
      [0, -100, 50, 0, 0],
      [0, 0, 0, 80, 80],
    ];
    const { data, rows, dims, truth } = blobs(centers, 25, 1, new Rng('blobs'));
    const result = kmeans(data, rows, dims, { k: 4, rng: new Rng(42) });
    expect(samePartition(result.labels, truth)).toBe(true);
    expect(result.centroids).toHaveLength(4 * dims);
    // Each centroid is within the noise of one true centre.
    for (let c = 0; c < 4; c++) {
      const centroid = Array.from(result.centroids.subarray(c * dims, (c + 1) * dims));
      const near = centers.some((t) => t.every((v, j) => Math.abs(v - (centroid[j] as number)) < 1));
      expect(near, `centroid ${c}`).toBe(true);
    }
    expect(result.iterations).toBeGreaterThanOrEqual(1);
  });

  it('is deterministic for a seed, and seeds can differ', () => {
    const rng = new Rng('noise');
    const data = rng.fillNormal(new Float32Array(300 * 4), 0, 1);
    const a = kmeans(data, 300, 4, { k: 12, rng: new Rng(7) });
    const b = kmeans(data, 300, 4, { k: 12, rng: new Rng(7) });
    expect(Array.from(b.centroids)).toEqual(Array.from(a.centroids));
    expect(Array.from(b.labels)).toEqual(Array.from(a.labels));
    expect(b.inertia).toBe(a.inertia);
    const inertias = new Set(
      [1, 2, 3, 4, 5].map((s) => kmeans(data, 300, 4, { k: 12, rng: new Rng(s) }).inertia),
    );
    expect(inertias.size).toBeGreaterThan(1);
  });

  it('keeps the run with the lowest inertia when nInit > 1', () => {
    const data = new Rng('ninit').fillNormal(new Float32Array(200 * 3), 0, 1);
    const best = kmeans(data, 200, 3, { k: 8, rng: new Rng('s'), nInit: 5 });
    // Runs draw from the stream one after another, so five single runs on one Rng replay them.
    const replay = new Rng('s');
    const runs = Array.from({ length: 5 }, () => kmeans(data, 200, 3, { k: 8, rng: replay }));
    const minimum = Math.min(...runs.map((r) => r.inertia));
    expect(new Set(runs.map((r) => r.inertia)).size).toBeGreaterThan(1);
    expect(best.inertia).toBe(minimum);
    const winner = runs.find((r) => r.inertia === minimum);
    expect(Array.from(best.labels)).toEqual(Array.from(winner?.labels ?? []));
  });

  it('labels match the final centroids and inertia is their squared distance', () => {
    const data = new Rng('check').fillNormal(new Float32Array(150 * 6), 0, 3);
    const { centroids, labels, inertia } = kmeans(data, 150, 6, { k: 5, rng: new Rng(1) });
    let total = 0;
    for (let i = 0; i < 150; i++) {
      const dist = (c: number) => {
        let s = 0;
        for (let j = 0; j < 6; j++)
          s += ((data[i * 6 + j] as number) - (centroids[c * 6 + j] as number)) ** 2;
        return s;
      };
      const own = dist(labels[i] as number);
      for (let c = 0; c < 5; c++) expect(own).toBeLessThanOrEqual(dist(c) + 1e-3);
      total += own;
    }
    expect(inertia).toBeCloseTo(total, 2);
  });

  it('survives more clusters than distinct points (empty clusters are re-seeded)', () => {
    const data = new Float32Array([0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 10, 0]);
    const result = kmeans(data, 6, 2, { k: 3, rng: new Rng(3) });
    expect(result.inertia).toBe(0);
    expect(Array.from(result.centroids).every(Number.isFinite)).toBe(true);
    expect(result.labels[0]).not.toBe(result.labels[4]);
  });

  it('rejects bad inputs with clear errors', () => {
    const data = new Float32Array(6);
    expect(() => kmeans(data, 3, 2, { k: 4, rng: new Rng(0) })).toThrow(
      'k-means needs at least k samples: got 3 < 4',
    );
    expect(() => kmeans(data, 4, 2, { k: 2, rng: new Rng(0) })).toThrow(/rows × dims = 4 × 2/);
    expect(() => kmeans(data, 3, 2, { k: 0, rng: new Rng(0) })).toThrow(/option "k"/);
    expect(() => kmeans(data, 3, 2, { k: 2, rng: new Rng(0), tol: -1 })).toThrow(/option "tol"/);
    expect(() => kmeans(new Float32Array([0, Number.NaN, 1, 1]), 2, 2, { k: 1, rng: new Rng(0) })).toThrow(
      /row 0, column 1/,
    );
    expect(() => kmeans(data, 3, 2, { k: 4, rng: new Rng(0) })).toThrow(PeftError);
  });

  it('clusters 1000 × 768 into 200 prototypes (SHIP size)', () => {
    const data = new Rng('large').fillNormal(new Float32Array(1000 * 768), 0, 1);
    const start = performance.now();
    const result = kmeans(data, 1000, 768, { k: 200, rng: new Rng(42) });
    const seconds = (performance.now() - start) / 1000;
    console.info(`kmeans 1000×768 k=200: ${seconds.toFixed(2)} s, ${result.iterations} iterations`);
    expect(new Set(result.labels).size).toBe(200);
    expect(Number.isFinite(result.inertia)).toBe(true);
  });
});
