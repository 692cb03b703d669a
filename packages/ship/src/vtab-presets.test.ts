import { groupLayers } from '@peftjs/hierarchy';
import { describe, expect, it } from 'vitest';
import { SHIP_VTAB_PRESETS, shipVtabPreset } from './vtab-presets.js';

describe('SHIP VTAB-1k presets (docs/ship-method.md §8.3)', () => {
  it('cover the 19 tasks with the published settings and group sizes 7 / 4 / 8', () => {
    const presets = Object.values(SHIP_VTAB_PRESETS);
    expect(presets).toHaveLength(19);
    const count = (group: string) => presets.filter((p) => p.group === group).length;
    expect([count('natural'), count('specialized'), count('structured')]).toEqual([7, 4, 8]);
    expect(shipVtabPreset('cifar100')).toMatchObject({
      threshold: 0.93,
      promptLength: 50,
      lr: 0.001,
      weightDecay: 0.001,
    });
    expect(shipVtabPreset('caltech101')).toMatchObject({
      threshold: 0.95,
      promptLength: 200,
      weightDecay: 0,
    });
  });

  it('flag the implausible learning rates (0.05, 0.25, 1.0) and only those', () => {
    const flagged = Object.values(SHIP_VTAB_PRESETS)
      .filter((p) => p.lrWarning)
      .map((p) => `${p.task}:${p.lr}`)
      .sort();
    expect(flagged).toEqual([
      'diabetic_retinopathy:1',
      'dsprites_ori:0.05',
      'eurosat:0.05',
      'kitti:0.05',
      'resisc45:0.05',
      'svhn:0.25',
    ]);
    expect(shipVtabPreset('svhn').lrWarning).toMatch(/sweep 1e-3, 5e-3, 1e-2/);
  });

  it('reproduce their mean published accuracy per group (docs/ship-method.md §9: 82.58 / 86.63 / 61.53)', () => {
    const mean = (group: string) => {
      const rows = Object.values(SHIP_VTAB_PRESETS).filter((p) => p.group === group);
      return rows.reduce((a, p) => a + p.publishedTop1, 0) / rows.length;
    };
    expect(mean('natural')).toBeCloseTo(82.58, 1);
    expect(mean('specialized')).toBeCloseTo(86.63, 1);
    expect(mean('structured')).toBeCloseTo(61.53, 1);
  });

  it('have hierarchies consistent with their threshold: M = number of starts, starting at 0', () => {
    for (const preset of Object.values(SHIP_VTAB_PRESETS)) {
      expect(preset.publishedStarts[0], preset.task).toBe(0);
      expect(preset.threshold < 1).toBe(true);
    }
    // τ ≥ 1 degenerates to one hierarchy per block, the per-layer SIP ablation.
    const flat = Array.from({ length: 12 }, () => Array.from({ length: 12 }, () => 0.99));
    expect(groupLayers(flat, { threshold: 1 })).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('name the known tasks when asked for an unknown one', () => {
    expect(() => shipVtabPreset('imagenet')).toThrow(
      /unknown VTAB-1k task "imagenet"; known: cifar100, caltech101/,
    );
  });
});
