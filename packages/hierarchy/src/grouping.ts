import { PeftError, invalidOption } from '@peftjs/core';
import { requireSquareMatrix } from './validate.js';

/** Options of `groupLayers`. */
export interface GroupLayersOptions {
  /** τ: layer j starts a new hierarchy when its affinity with the current hierarchy's first layer is below τ. */
  threshold: number;
  /** Starts at or after this layer are dropped (the last retained hierarchy then runs to the end). Default L. */
  endLayer?: number;
}

/**
 * Greedy layer grouping of SHIP (docs/ship-method.md §2.3). The comparison is against the *first* layer of the current hierarchy
 * (the anchor), not the preceding layer, so a slow drift of adjacent similarities still opens a new hierarchy.
 * τ ≥ 1 makes every layer its own hierarchy. Returns the start layers, always beginning with 0.
 */
export function groupLayers(affinity: number[][], options: GroupLayersOptions): number[] {
  const layers = requireSquareMatrix('affinity', affinity);
  const { threshold } = options;
  if (typeof threshold !== 'number' || !Number.isFinite(threshold)) {
    invalidOption('threshold', threshold, 'a finite number');
  }
  const endLayer = options.endLayer ?? layers;
  if (!Number.isInteger(endLayer) || endLayer < 1 || endLayer > layers) {
    throw new PeftError(
      'INVALID_OPTION',
      `option "endLayer" must be an integer in [1, ${layers}] (the number of layers); got ${String(options.endLayer)}`,
    );
  }
  let starts: number[];
  if (threshold >= 1) {
    // Explicit: identical layers (affinity exactly 1) would otherwise merge under the `<` rule.
    starts = Array.from({ length: layers }, (_, i) => i);
  } else {
    starts = [0];
    let anchor = 0;
    for (let j = 1; j < layers; j++) {
      const row = affinity[anchor] as number[];
      if ((row[j] as number) < threshold) {
        starts.push(j);
        anchor = j;
      }
    }
  }
  return starts.filter((s) => s < endLayer);
}
