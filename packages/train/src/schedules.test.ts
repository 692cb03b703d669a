import { describe, expect, it } from 'vitest';
import { constantSchedule, stepCosineSchedule, timmCosineSchedule } from './schedules.js';

describe('timm cosine schedule stepped per epoch (docs/ship-method.md §8.2)', () => {
  // The SHIP recipe: η = 1e-3, 10 warm-up epochs from 1e-6, floor 1e-5, t_initial = 100.
  const ship = timmCosineSchedule({
    baseLr: 1e-3,
    epochs: 100,
    warmupEpochs: 10,
    warmupLrInit: 1e-6,
    lrMin: 1e-5,
  });

  it('runs epochs 0 and 1 at warmupLrInit', () => {
    expect(ship.unit).toBe('epoch');
    expect(ship.lrAt(0)).toBe(1e-6);
    expect(ship.lrAt(1)).toBe(1e-6);
  });

  it('warms up linearly: epoch 5 runs at f(4) = 1e-6 + 4·(1e-3 − 1e-6)/10', () => {
    expect(ship.lrAt(5)).toBeCloseTo(0.0004006, 15);
    expect(ship.lrAt(10)).toBeCloseTo(1e-6 + (9 * 0.000999) / 10, 15);
  });

  it('reaches the cosine at epoch 11 just below η: f(10) = 1e-5 + ½·0.00099·(1 + cos(π/10))', () => {
    const lr = ship.lrAt(11);
    expect(lr).toBeCloseTo(1e-5 + 0.5 * 0.00099 * (1 + 0.9510565162951535), 15);
    expect(lr).toBeLessThan(1e-3);
    expect(lr).toBeGreaterThan(0.97e-3);
  });

  it('epoch 50 runs at f(49) and epoch 99 at f(98), never reaching lrMin', () => {
    // cos(49π/100) = sin(π/100) = 0.03141075907812829; cos(98π/100) = −cos(π/50) = −0.9980267284282716.
    expect(ship.lrAt(50)).toBeCloseTo(1e-5 + 0.5 * 0.00099 * 1.0314107590781283, 15);
    expect(ship.lrAt(99)).toBeCloseTo(1e-5 + 0.5 * 0.00099 * (1 - 0.9980267284282716), 15);
    expect(ship.lrAt(99)).toBeGreaterThan(1e-5);
  });

  it('stays at lrMin past t_initial and starts at η without warm-up', () => {
    expect(ship.lrAt(101)).toBe(1e-5);
    const plain = timmCosineSchedule({
      baseLr: 0.1,
      epochs: 4,
      warmupEpochs: 0,
      warmupLrInit: 1e-6,
      lrMin: 0,
    });
    expect([0, 1, 2, 3].map((e) => plain.lrAt(e))).toEqual([
      0.1,
      0.1,
      0.05 * (1 + Math.cos(Math.PI / 4)),
      0.05,
    ]);
  });

  it('rejects bad options by name', () => {
    expect(() =>
      timmCosineSchedule({ baseLr: 1e-3, epochs: 0, warmupEpochs: 0, warmupLrInit: 0, lrMin: 0 }),
    ).toThrow(/option "epochs"/);
    expect(() =>
      timmCosineSchedule({ baseLr: 1e-3, epochs: 10, warmupEpochs: 1.5, warmupLrInit: 0, lrMin: 0 }),
    ).toThrow(/option "warmupEpochs"/);
    expect(() => ship.lrAt(-1)).toThrow(/option "epoch"/);
  });
});

describe('per-step cosine schedule', () => {
  it('uses f(step): warm-up from warmupLrInit, cosine over totalSteps, then lrMin', () => {
    const s = stepCosineSchedule({ baseLr: 1, totalSteps: 100, warmupSteps: 10, warmupLrInit: 0, lrMin: 0 });
    expect(s.unit).toBe('step');
    expect(s.lrAt(0)).toBe(0);
    expect(s.lrAt(5)).toBe(0.5);
    expect(s.lrAt(50)).toBeCloseTo(0.5, 15);
    expect(s.lrAt(100)).toBe(0);
  });

  it('constant is constant', () => {
    expect(constantSchedule(0.3).lrAt(7)).toBe(0.3);
  });
});
