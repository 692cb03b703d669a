import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PeftError } from '@peftjs/core';
import { parseSafetensors, serializeSafetensors } from '@peftjs/core/safetensors';
import { describe, expect, it } from 'vitest';
import { loadVitFromBytes } from '../load.js';
import { assertFiniteTensors } from './finite.js';

const fixture = fileURLToPath(new URL('../../test/fixtures/tiny-vit/model.safetensors', import.meta.url));

/** The tiny-ViT fixture with `value` written at `index` of tensor `name`. */
function poisoned(name: string, index: number, value: number): Uint8Array {
  const file = parseSafetensors(readFileSync(fixture), { source: 'fixture' });
  const tensors = file.names().map((n) => {
    const host = file.getHost(n);
    const data = Float32Array.from(host.data);
    if (n === name) data[index] = value;
    return { name: n, shape: host.shape, data };
  });
  return serializeSafetensors(tensors, file.metadata);
}

describe('NaN and Inf backbone weights', () => {
  it('are refused at load, naming the file, the tensor and the first bad index', () => {
    const bytes = poisoned('blocks.1.attn.qkv.weight', 5, Number.NaN);
    let error: unknown;
    try {
      loadVitFromBytes(bytes, { source: 'nan.safetensors' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PeftError);
    expect((error as PeftError).code).toBe('WEIGHTS_MISMATCH');
    expect((error as PeftError).message).toMatch(
      /^nan\.safetensors: tensor "blocks\.1\.attn\.qkv\.weight" holds 1 non-finite value \(first NaN at flat index 5 of shape \[\d+, \d+\]\); refusing to load$/,
    );
    expect(() => loadVitFromBytes(poisoned('head.bias', 0, Number.NEGATIVE_INFINITY))).toThrow(
      /tensor "head\.bias" holds 1 non-finite value \(first -Infinity at flat index 0/,
    );
  });

  it('lets finite weights through, including the largest float32', () => {
    const loaded = loadVitFromBytes(poisoned('cls_token', 0, 3.4028234663852886e38));
    expect(loaded.model.config.depth).toBeGreaterThan(0);
    loaded.model.dispose();
    expect(() =>
      assertFiniteTensors(
        new Map([['t', { shape: [3], data: Float32Array.from([0, Number.NaN, Number.NaN]) }]]),
        's',
      ),
    ).toThrow(
      's: tensor "t" holds 2 non-finite values (first NaN at flat index 1 of shape [3]); refusing to load',
    );
  });
});
