import { PeftError } from '@peftjs/core';
import type { HostTensor } from '@peftjs/core/safetensors';

/**
 * Refuses weights holding NaN or ±Infinity, naming the first such tensor (by its name in the file), the index of
 * its first bad value and how many it holds: such weights make every prediction NaN (label -1) instead of failing.
 */
export function assertFiniteTensors(tensors: ReadonlyMap<string, HostTensor>, source: string): void {
  for (const [name, tensor] of tensors) {
    const { data } = tensor;
    let first = -1;
    let count = 0;
    for (let i = 0; i < data.length; i++) {
      const v = data[i] as number;
      if (v - v === 0) continue; // finite (NaN - NaN and ∞ - ∞ are NaN)
      if (first < 0) first = i;
      count++;
    }
    if (first >= 0) {
      throw new PeftError(
        'WEIGHTS_MISMATCH',
        `${source}: tensor "${name}" holds ${count} non-finite value${count === 1 ? '' : 's'} ` +
          `(first ${data[first]} at flat index ${first} of shape [${tensor.shape.join(', ')}]); refusing to load`,
      );
    }
  }
}
