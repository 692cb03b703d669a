import { describe, expect, it } from 'vitest';
import { Rng, createRng } from './random.js';

describe('Rng', () => {
  it('repeats the same sequence for the same seed and differs for another seed', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const seqA = Array.from({ length: 8 }, () => a.nextUint32());
    const seqB = Array.from({ length: 8 }, () => b.nextUint32());
    const seqC = Array.from({ length: 8 }, () => c.nextUint32());
    expect(seqA).toEqual(seqB);
    expect(seqA).not.toEqual(seqC);
  });

  it('derives split streams from the seed, not from the position in the parent', () => {
    const fresh = createRng('run').split('shuffle');
    const used = createRng('run');
    for (let i = 0; i < 100; i++) used.float();
    const late = used.split('shuffle');
    expect(Array.from({ length: 5 }, () => late.float())).toEqual(
      Array.from({ length: 5 }, () => fresh.float()),
    );
    const other = createRng('run').split('init');
    expect(other.float()).not.toBe(createRng('run').split('shuffle').float());
  });

  it('draws uniform floats in [0, 1) with the right mean', () => {
    const rng = new Rng(1);
    let sum = 0;
    for (let i = 0; i < 20000; i++) {
      const x = rng.float();
      expect(x >= 0 && x < 1).toBe(true);
      sum += x;
    }
    expect(Math.abs(sum / 20000 - 0.5)).toBeLessThan(0.01);
  });

  it('draws normals with mean 0 and std 1, and truncated normals within bounds', () => {
    const rng = new Rng(2);
    const n = 40000;
    const xs = Array.from({ length: n }, () => rng.normal());
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(std - 1)).toBeLessThan(0.02);
    const t = Array.from({ length: 5000 }, () => rng.truncatedNormal(0, 1, -0.5, 0.5));
    expect(Math.min(...t)).toBeGreaterThanOrEqual(-0.5);
    expect(Math.max(...t)).toBeLessThanOrEqual(0.5);
  });

  it('draws integers covering [0, n) and shuffles into a permutation', () => {
    const rng = new Rng(3);
    const counts = new Array(7).fill(0);
    for (let i = 0; i < 7000; i++) counts[rng.int(7)]++;
    for (const c of counts) expect(c).toBeGreaterThan(850);
    const perm = rng.permutation(50);
    expect([...perm].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(perm).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(() => rng.int(0)).toThrow(/0 < n/);
  });

  it('resumes exactly from a saved state', () => {
    const rng = new Rng('ckpt');
    for (let i = 0; i < 17; i++) rng.normal();
    const state = rng.getState();
    const restored = Rng.fromState(JSON.parse(JSON.stringify(state)));
    expect(Array.from({ length: 6 }, () => restored.normal())).toEqual(
      Array.from({ length: 6 }, () => rng.normal()),
    );
  });
});
