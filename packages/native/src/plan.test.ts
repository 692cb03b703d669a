import { describe, expect, it } from 'vitest';
import { planMatMul } from './plan.js';

describe('planMatMul (pure shape logic, runs without the addon)', () => {
  it('reads m, n, k under each transpose flag', () => {
    expect(planMatMul([3, 5], [5, 7], false, false)).toMatchObject({
      m: 3,
      n: 7,
      k: 5,
      outShape: [3, 7],
      batch: 1,
    });
    expect(planMatMul([5, 3], [5, 7], true, false)).toMatchObject({ m: 3, n: 7, k: 5 });
    expect(planMatMul([3, 5], [7, 5], false, true)).toMatchObject({ m: 3, n: 7, k: 5 });
    expect(planMatMul([5, 3], [7, 5], true, true)).toMatchObject({ m: 3, n: 7, k: 5 });
  });

  it('broadcasts batch dimensions with strides where one call suffices', () => {
    const p = planMatMul([1, 3, 5], [4, 5, 7], false, false);
    expect(p).toMatchObject({ outShape: [4, 3, 7], batch: 4, strideA: 0, strideB: 35, pairs: null });
    const q = planMatMul([2, 4, 3, 5], [5, 7], false, false);
    expect(q).toMatchObject({ outShape: [2, 4, 3, 7], batch: 8, strideA: 15, strideB: 0, pairs: null });
  });

  it('maps every output batch to its A and B matrix under general broadcasting', () => {
    const p = planMatMul([2, 1, 3, 5], [1, 3, 5, 7], false, false);
    expect(p.outShape).toEqual([2, 3, 3, 7]);
    expect(Array.from(p.pairs?.a ?? [])).toEqual([0, 0, 0, 1, 1, 1]);
    expect(Array.from(p.pairs?.b ?? [])).toEqual([0, 1, 2, 0, 1, 2]);
  });

  it('rejects mismatched inner or batch dimensions', () => {
    expect(() => planMatMul([3, 5], [4, 7], false, false)).toThrow(/inner shapes \(5\) and \(4\)/);
    expect(() => planMatMul([2, 3, 5], [3, 5, 7], false, false)).toThrow(/could not be broadcast/);
  });
});
