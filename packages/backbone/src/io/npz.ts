import type { HostTensor } from '@peftjs/core/safetensors';
import { PeftError } from '@peftjs/core';
import { type Unzipped, unzipSync } from 'fflate';
import { parseNpy } from './npy.js';

/**
 * Reads a NumPy `.npz` archive (a zip of `.npy` files, stored or deflated) into float32 host tensors keyed by entry
 * name without `.npy` (e.g. `Transformer/encoder_norm/scale`). Entries that are not `.npy` files are skipped.
 */
export function readNpz(bytes: Uint8Array, source: string): Map<string, HostTensor> {
  let files: Unzipped;
  try {
    // The filter skips inflating entries we would ignore anyway.
    files = unzipSync(bytes, { filter: (file) => file.name.endsWith('.npy') });
  } catch (error) {
    throw new PeftError(
      'NPZ_INVALID',
      `${source}: not a readable zip archive (${(error as Error).message})`,
      {
        cause: error,
      },
    );
  }
  const tensors = new Map<string, HostTensor>();
  for (const [name, data] of Object.entries(files)) {
    tensors.set(name.slice(0, -'.npy'.length), parseNpy(data, `${source}:${name}`));
  }
  return tensors;
}
