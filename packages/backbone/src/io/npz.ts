import type { HostTensor } from '@peftjs/core/safetensors';
import { PeftError } from '@peftjs/core';
import { inflateSync } from 'fflate';
import { parseNpy } from './npy.js';
import { type ZipEntry, readZipDirectory } from './zip-directory.js';

/** Default `maxInflatedBytes` of `readNpz`: 2 GiB of arrays (a ViT-L/16 checkpoint is about 1.2 GB). */
export const DEFAULT_MAX_NPZ_BYTES = 2 ** 31;

/** Options of `readNpz`. */
export interface ReadNpzOptions {
  /**
   * Most bytes the `.npy` entries may declare in total, checked from the central directory before anything is
   * inflated (default `DEFAULT_MAX_NPZ_BYTES`; `peft`: `model.maxNpzMb`).
   */
  readonly maxInflatedBytes?: number;
}

/**
 * Reads a NumPy `.npz` archive (a zip of `.npy` files, stored or deflated) into float32 host tensors keyed by entry
 * name without `.npy` (e.g. `Transformer/encoder_norm/scale`). Entries that are not `.npy` files are skipped.
 *
 * Before anything is inflated the central directory is checked (see `readZipDirectory`: overlapping entries,
 * impossible sizes, duplicates) and the declared sizes of the `.npy` entries must add up to at most
 * `maxInflatedBytes`; each entry is then inflated into a buffer of exactly its declared size, so that no archive
 * takes more memory than it declares.
 */
export function readNpz(
  bytes: Uint8Array,
  source: string,
  options: ReadNpzOptions = {},
): Map<string, HostTensor> {
  const limit = options.maxInflatedBytes ?? DEFAULT_MAX_NPZ_BYTES;
  if (!Number.isSafeInteger(limit) || limit <= 0) {
    throw new PeftError(
      'INVALID_OPTION',
      `option "maxInflatedBytes" must be a positive integer; got ${limit}`,
    );
  }
  let entries: ZipEntry[];
  try {
    entries = readZipDirectory(bytes, source, (name) => name.endsWith('.npy'));
  } catch (error) {
    if (error instanceof PeftError) throw error;
    // A DataView read past the end: some offset in the directory points outside the file.
    throw new PeftError(
      'NPZ_INVALID',
      `${source}: not a readable zip archive (${(error as Error).message})`,
      {
        cause: error,
      },
    );
  }
  const declared = entries.reduce((sum, entry) => sum + entry.size, 0);
  if (declared > limit) {
    throw new PeftError(
      'NPZ_INVALID',
      `${source}: its ${entries.length} arrays declare ${declared.toLocaleString('en-US')} bytes, over the limit of ` +
        `${limit.toLocaleString('en-US')}; raise option "maxInflatedBytes" (peft: --model.maxNpzMb) if the file is genuine`,
    );
  }
  const tensors = new Map<string, HostTensor>();
  for (const entry of entries) {
    const data = inflateEntry(bytes, entry, `${source}:${entry.name}`);
    tensors.set(entry.name.slice(0, -'.npy'.length), parseNpy(data, `${source}:${entry.name}`));
  }
  return tensors;
}

function inflateEntry(bytes: Uint8Array, entry: ZipEntry, where: string): Uint8Array {
  const compressed = bytes.subarray(entry.dataStart, entry.dataEnd);
  if (entry.method === 0) return compressed;
  let data: Uint8Array;
  try {
    // Into a buffer of the declared size: data beyond it is never written anywhere.
    data = inflateSync(compressed, { out: new Uint8Array(entry.size) });
  } catch (error) {
    throw new PeftError('NPZ_INVALID', `${where}: corrupt deflate data (${(error as Error).message})`, {
      cause: error,
    });
  }
  if (data.length !== entry.size) {
    throw new PeftError(
      'NPZ_INVALID',
      `${where}: inflates to ${data.length} bytes, not the ${entry.size} its directory entry declares`,
    );
  }
  return data;
}
