import { describe, expect, it } from 'vitest';
import { tf } from './tf.js';
import type { Tensor3D } from './tf.js';
import { TokenStream } from './tokens.js';

const filled = (batch: number, n: number, dim: number, value: number) =>
  tf.fill([batch, n, dim], value) as Tensor3D;

describe('TokenStream', () => {
  it('appends, inserts before, replaces in place and removes segments with a consistent layout', () => {
    const image = filled(2, 5, 4, 0);
    let s = new TokenStream(image)
      .withSegment('sip', 'ship', filled(1, 3, 4, 1))
      .withSegment('ssp', 'ship', filled(1, 2, 4, 2), { independent: true })
      .withSegment('ap', 'ship', filled(2, 1, 4, 3), { before: 'ssp' });
    expect(s.segments.map((x) => x.key)).toEqual(['sip', 'ap', 'ssp']);
    expect(s.layout()).toEqual({
      numImageTokens: 5,
      numPromptTokens: 6,
      total: 11,
      segments: [
        { key: 'sip', owner: 'ship', start: 5, length: 3, independent: false },
        { key: 'ap', owner: 'ship', start: 8, length: 1, independent: false },
        { key: 'ssp', owner: 'ship', start: 9, length: 2, independent: true },
      ],
    });
    s = s.withSegment('sip', 'ship', filled(1, 4, 4, 5));
    expect(s.segments.map((x) => `${x.key}:${x.tokens.shape[1]}`)).toEqual(['sip:4', 'ap:1', 'ssp:2']);
    expect(s.withoutSegment('ap').layout().total).toBe(11);
    expect(s.independentLast().segments.map((x) => x.key)).toEqual(['sip', 'ap', 'ssp']);
    expect(() => s.withSegment('bad', 'x', filled(2, 1, 4, 0), { independent: true })).toThrow(
      /image-independent segment "bad" must have batch 1/,
    );
  });

  it('broadcasts batch-independent prompts when materialised and splits back by layout', () => {
    const s = new TokenStream(filled(2, 2, 3, 0)).withSegment('p', 'vpt', filled(1, 2, 3, 7));
    const x = s.toTensor();
    expect(x.shape).toEqual([2, 4, 3]);
    const row = x.arraySync()[1];
    expect(row?.map((t) => t[0])).toEqual([0, 0, 7, 7]);
    expect(s.promptTensor()?.shape).toEqual([2, 2, 3]);
    expect(new TokenStream(filled(2, 2, 3, 0)).promptTensor()).toBeNull();
    const back = TokenStream.fromTensor(x, s.layout());
    expect(back.segment('p')?.tokens.shape).toEqual([2, 2, 3]);
    expect(back.image.shape).toEqual([2, 2, 3]);
  });

  it('rejects segments of the wrong width or batch, naming the segment', () => {
    const s = new TokenStream(filled(2, 2, 3, 0));
    expect(() => s.withSegment('bad', 'x', filled(1, 1, 4, 0))).toThrow(
      /segment "bad" must be \[B\|1, n, 3\]/,
    );
    expect(() => s.withSegment('bad', 'x', filled(3, 1, 3, 0))).toThrow(/segment "bad" has batch 3/);
    expect(() => TokenStream.fromTensor(filled(2, 5, 3, 0), s.layout())).toThrow(
      /5 tokens; layout expects 2/,
    );
  });
});
