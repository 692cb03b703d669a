/**
 * One seeded PRNG for everything random in PEFT.js (parameter init, data shuffling, k-means, dropout masks).
 *
 * The generator is sfc32 (small fast counter, 128-bit state) seeded through a 32-bit string hash. `split(name)`
 * derives an independent child stream from the parent's *seed*, not its current state, so adding a new consumer
 * never shifts the numbers an existing one sees: `rng.split('init')`, `rng.split('shuffle')`, `rng.split('kmeans')`.
 * `Math.random` and `tf.util.shuffle` are never used.
 */
export type Seed = number | string;

/** A generator's complete state, as `Rng.getState` returns it (plain JSON, stored in checkpoints). */
export interface RngState {
  /** The generator's seed (as a string); `split` derives children from it. */
  readonly seed: string;
  /** The four 32-bit words of the sfc32 state. */
  readonly state: readonly [number, number, number, number];
  /** The second Box–Muller value waiting to be returned by `normal`, or null. */
  readonly spareNormal: number | null;
}

/** MurmurHash3-style mixing of a string into four 32-bit words. */
function hashToWords(text: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/**
 * A seeded sfc32 generator (see `Seed`). The same seed always yields the same sequence; a non-finite number
 * seed throws `TypeError`.
 */
export class Rng {
  /** The seed as a string (`String(seed)`); children made by `split(name)` have seed `<seed>/<name>`. */
  readonly seed: string;
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareNormal: number | null = null;

  constructor(seed: Seed) {
    if (typeof seed === 'number' && !Number.isFinite(seed)) {
      throw new TypeError(`Rng seed must be a finite number or a string; got ${seed}`);
    }
    this.seed = String(seed);
    [this.a, this.b, this.c, this.d] = hashToWords(`peftjs:${this.seed}`);
    // Warm up so that similar seeds diverge immediately.
    for (let i = 0; i < 15; i++) this.nextUint32();
  }

  /** An independent stream named `name`, derived from this generator's seed (not its position). */
  split(name: string): Rng {
    return new Rng(`${this.seed}/${name}`);
  }

  /** The next raw output: an unsigned 32-bit integer in [0, 2³²). */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 53 bits of precision. */
  float(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.float();
  }

  /** Uniform integer in [0, n), without modulo bias. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 2 ** 32)
      throw new RangeError(`Rng.int needs 0 < n <= 2^32; got ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Standard normal via the Box–Muller transform (the second value is kept for the next call). */
  normal(mean = 0, std = 1): number {
    if (this.spareNormal !== null) {
      const z = this.spareNormal;
      this.spareNormal = null;
      return mean + std * z;
    }
    let u = 0;
    while (u === 0) u = this.float();
    const v = this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  }

  /** Normal(mean, std) truncated to [low, high] (absolute bounds, as timm's `trunc_normal_`), by rejection. */
  truncatedNormal(mean: number, std: number, low: number, high: number): number {
    if (!(low < high)) throw new RangeError(`truncatedNormal needs low < high; got [${low}, ${high}]`);
    for (let i = 0; i < 10_000; i++) {
      const x = this.normal(mean, std);
      if (x >= low && x <= high) return x;
    }
    return Math.min(high, Math.max(low, mean));
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }

  /** A 31-bit seed for tfjs random ops (dropout masks), drawn from this stream. */
  tfSeed(): number {
    return this.nextUint32() >>> 1;
  }

  /** Fills `out` with uniform values in [low, high) and returns it. */
  fillUniform(out: Float32Array, low: number, high: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.uniform(low, high);
    return out;
  }

  /** Fills `out` with Normal(mean, std) values and returns it. */
  fillNormal(out: Float32Array, mean: number, std: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal(mean, std);
    return out;
  }

  /**
   * Fills `out` with Normal(0, std) values truncated to [low, high] (absolute bounds, default ±2, as timm's
   * `trunc_normal_`) and returns it.
   */
  fillTruncatedNormal(out: Float32Array, std: number, low = -2, high = 2): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.truncatedNormal(0, std, low, high);
    return out;
  }

  /** Snapshot for checkpoints: restoring it continues the exact same sequence. */
  getState(): RngState {
    return { seed: this.seed, state: [this.a, this.b, this.c, this.d], spareNormal: this.spareNormal };
  }

  /**
   * Rebuilds a generator from `getState()`: it continues the exact sequence the original would have produced.
   */
  static fromState(state: RngState): Rng {
    const rng = new Rng(state.seed);
    [rng.a, rng.b, rng.c, rng.d] = state.state;
    rng.spareNormal = state.spareNormal;
    return rng;
  }
}

/** Creates the root generator of a run. */
export function createRng(seed: Seed): Rng {
  return new Rng(seed);
}
