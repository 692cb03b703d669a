import { PeftError } from '@peftjs/core';
import { describe, expect, it } from 'vitest';
import { groupLayers } from './grouping.js';

/**
 * A symmetric affinity where similarity decays multiplicatively along the chain of adjacent layers:
 * A[i][j] = adjacent[i] · adjacent[i+1] · … · adjacent[j−1] for i < j, diagonal 1.
 */
function chainAffinity(adjacent: number[]): number[][] {
  const L = adjacent.length + 1;
  const A = Array.from({ length: L }, () => new Array<number>(L).fill(1));
  for (let i = 0; i < L; i++) {
    let p = 1;
    for (let j = i + 1; j < L; j++) {
      p *= adjacent[j - 1] as number;
      (A[i] as number[])[j] = p;
      (A[j] as number[])[i] = p;
    }
  }
  return A;
}

/** The rule SHIP does NOT use (compare with the preceding layer), to show the two differ. */
function adjacentRule(A: number[][], threshold: number): number[] {
  const starts = [0];
  for (let j = 1; j < A.length; j++) if (((A[j - 1] as number[])[j] as number) < threshold) starts.push(j);
  return starts;
}

describe('groupLayers', () => {
  it('compares with the first layer of the current hierarchy, not the adjacent layer', () => {
    // Every adjacent pair is 0.95 ≥ τ = 0.9, but A[0][3] = 0.95³ ≈ 0.857 < 0.9 → 3 starts a hierarchy; from
    // anchor 3, A[3][4] = 0.95 stays.
    const A = chainAffinity([0.95, 0.95, 0.95, 0.95]);
    expect(groupLayers(A, { threshold: 0.9 })).toEqual([0, 3]);
    expect(adjacentRule(A, 0.9)).toEqual([0]);
  });

  it('makes every layer its own hierarchy when τ ≥ 1, even for identical layers', () => {
    const ones = Array.from({ length: 5 }, () => new Array<number>(5).fill(1));
    expect(groupLayers(ones, { threshold: 1 })).toEqual([0, 1, 2, 3, 4]);
    expect(groupLayers(chainAffinity([0.99, 0.99]), { threshold: 1.5 })).toEqual([0, 1, 2]);
  });

  it('drops starts at or after endLayer', () => {
    // 0.95^k: anchor 0 keeps 1, 2 (0.9025) and breaks at 3 (0.857); anchor 3 breaks at 6.
    const A = chainAffinity(new Array<number>(7).fill(0.95));
    expect(groupLayers(A, { threshold: 0.9 })).toEqual([0, 3, 6]);
    expect(groupLayers(A, { threshold: 0.9, endLayer: 8 })).toEqual([0, 3, 6]);
    expect(groupLayers(A, { threshold: 0.9, endLayer: 6 })).toEqual([0, 3]);
    expect(groupLayers(A, { threshold: 0.9, endLayer: 1 })).toEqual([0]);
    expect(groupLayers(A, { threshold: 2, endLayer: 3 })).toEqual([0, 1, 2]);
  });

  it('groups a 12-layer matrix shaped like ViT-B/16 affinities (docs/ship-method.md §2.2)', () => {
    // Adjacent 0.92–0.98 (weakest 2→3 and 9→10), then a sharp drop 10→11.
    const A = chainAffinity([0.98, 0.97, 0.92, 0.98, 0.97, 0.98, 0.96, 0.98, 0.97, 0.93, 0.65]);
    expect((A[0] as number[])[11]).toBeGreaterThan(0.14);
    expect((A[0] as number[])[11]).toBeLessThan(0.47);
    // τ = 0.95 by hand:
    //   anchor 0: A01 .98, A02 .9506, A03 .8746 < τ → 3
    //   anchor 3: A34 .98, A35 .9506, A36 .9316 < τ → 6
    //   anchor 6: A67 .96, A68 .9408 < τ → 8
    //   anchor 8: A89 .97, A8,10 .9021 < τ → 10
    //   anchor 10: A10,11 .65 → 11
    expect(groupLayers(A, { threshold: 0.95 })).toEqual([0, 3, 6, 8, 10, 11]);
    // τ = 0.90: A03 .8746 → 3; A37 = .9316·.96 = .8943 → 7; A7,10 = .98·.97·.93 = .8841 → 10; A10,11 → 11.
    expect(groupLayers(A, { threshold: 0.9 })).toEqual([0, 3, 7, 10, 11]);
    // The adjacent rule would only split at the three weak steps.
    expect(adjacentRule(A, 0.95)).toEqual([0, 3, 10, 11]);
    expect(groupLayers(A, { threshold: 0.95, endLayer: 10 })).toEqual([0, 3, 6, 8]);
  });

  it('handles depth 6 and depth 24', () => {
    // Depth 6, τ = 0.95: A02 = .99·.9 = .891 → 2; A23 .99, A24 .9801, A25 = .9801·.5 → 5.
    expect(groupLayers(chainAffinity([0.99, 0.9, 0.99, 0.99, 0.5]), { threshold: 0.95 })).toEqual([0, 2, 5]);
    // Depth 24, adjacent 0.99: 0.99⁵ ≈ .951 ≥ .95 but 0.99⁶ ≈ .941 < .95 → a hierarchy every 6 layers.
    const deep = chainAffinity(new Array<number>(23).fill(0.99));
    expect(groupLayers(deep, { threshold: 0.95 })).toEqual([0, 6, 12, 18]);
    expect(adjacentRule(deep, 0.95)).toEqual([0]);
    expect(groupLayers(deep, { threshold: 1 })).toHaveLength(24);
  });

  it('rejects malformed matrices and options with a message naming the culprit', () => {
    const A = chainAffinity([0.9, 0.9, 0.9]);
    expect(() => groupLayers([], { threshold: 0.9 })).toThrow(/non-empty square matrix/);
    expect(() => groupLayers([[1, 0.5], [0.5]], { threshold: 0.9 })).toThrow(/row 1 has 1 columns/);
    expect(() =>
      groupLayers(
        [
          [1, 0.5, 0.2],
          [0.5, 1, 0.3],
        ],
        { threshold: 0.9 },
      ),
    ).toThrow(/row 0 has 3 columns/);
    const bad = A.map((row) => [...row]);
    (bad[1] as number[])[2] = Number.NaN;
    expect(() => groupLayers(bad, { threshold: 0.9 })).toThrow(/row 1, column 2/);
    expect(() => groupLayers(A, { threshold: Number.NaN })).toThrow(/option "threshold"/);
    expect(() => groupLayers(A, { threshold: Number.POSITIVE_INFINITY })).toThrow(/option "threshold"/);
    expect(() => groupLayers(A, { threshold: 0.9, endLayer: 0 })).toThrow(/option "endLayer".*\[1, 4\]/);
    expect(() => groupLayers(A, { threshold: 0.9, endLayer: 5 })).toThrow(/option "endLayer"/);
    expect(() => groupLayers(A, { threshold: 0.9, endLayer: 2.5 })).toThrow(/option "endLayer"/);
    expect(() => groupLayers(A, { threshold: 0.9, endLayer: 0 })).toThrow(PeftError);
  });
});
