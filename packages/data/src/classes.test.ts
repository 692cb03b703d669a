import type { PeftError } from '@peftjs/core';
import { describe, expect, it } from 'vitest';
import { MAX_INFERRED_CLASSES, inferClassCount } from './classes.js';

const at = (i: number) => `list.txt:${i + 1}`;

describe('inferClassCount', () => {
  it('is the largest label + 1, ignoring negative labels (the checks report those)', () => {
    expect(inferClassCount([0, 2, 1, -1], at, 'split')).toBe(3);
    expect(inferClassCount(Int32Array.from([4, 0, 1, 2, 3]), at, 'split')).toBe(5);
  });

  it('tolerates up to 16 empty classes, or fewer empty classes than filled ones', () => {
    expect(inferClassCount([0, 16], at, 'split')).toBe(17); // 15 empty
    expect(inferClassCount([0, 17], at, 'split')).toBe(18); // 16 empty
    expect(() => inferClassCount([0, 18], at, 'split')).toThrow(
      'split: label 18 at list.txt:2 would make 19 classes, but only 2 distinct labels appear',
    );
    const half = Array.from({ length: 40 }, (_, i) => i).concat([79]); // 41 present, 39 empty of 80
    expect(inferClassCount(half, at, 'split')).toBe(80);
  });

  it('never infers more than MAX_INFERRED_CLASSES, and needs a non-negative label', () => {
    const all = Array.from({ length: MAX_INFERRED_CLASSES + 1 }, (_, i) => i);
    const error = (() => {
      try {
        inferClassCount(all, at, 'split');
      } catch (e) {
        return e as PeftError;
      }
      return null;
    })();
    expect(error?.code).toBe('INVALID_CONFIG');
    expect(error?.message).toMatch(/would make 100,001 classes, more than the 100,000 ever inferred/);
    expect(() => inferClassCount([-1, -2], at, 'split')).toThrow(
      'split: no non-negative labels to infer the class count from; pass numClasses (peft: data.numClasses)',
    );
  });
});
