import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { Rng } from './random.js';
import { Sha256 } from './sha256.js';

it('equals node:crypto sha256 for empty, short, block-boundary and chunked inputs', () => {
  const rng = new Rng('sha');
  for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 128, 1000, 100_003]) {
    const data = Uint8Array.from({ length }, () => rng.int(256));
    const expected = createHash('sha256').update(data).digest('hex');
    expect(new Sha256().update(data).hex(), `length ${length}`).toBe(expected);
    // Same digest when fed in uneven chunks.
    const chunked = new Sha256();
    for (let i = 0; i < length; i += 37) chunked.update(data.subarray(i, i + 37));
    expect(chunked.hex()).toBe(expected);
  }
  expect(new Sha256().update('abc').hex()).toBe(
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  );
});
