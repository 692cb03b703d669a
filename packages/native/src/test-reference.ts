/** Float64 references shared by the native kernel tests (no tfjs imports: the valgrind child loads this). */

/** Deterministic uniform values in [-1, 1). */
export function randomFloats(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[i] = state / 2147483648 - 1;
  }
  return out;
}

/** Naive double-precision reference: one product of op(A) (m×k) and op(B) (k×n), written at out[outOffset..]. */
export function referenceGemm(
  a: Float32Array,
  aOffset: number,
  b: Float32Array,
  bOffset: number,
  out: Float64Array,
  outOffset: number,
  m: number,
  n: number,
  k: number,
  transposeA: boolean,
  transposeB: boolean,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) {
        const av = a[aOffset + (transposeA ? p * m + i : i * k + p)] as number;
        const bv = b[bOffset + (transposeB ? j * k + p : p * n + j)] as number;
        sum += av * bv;
      }
      out[outOffset + i * n + j] = sum;
    }
  }
}

/** Largest |got − want| divided by max(1, max |want|). */
export function relativeMaxDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} ≠ ${want.length}`);
  let scale = 1;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i] as number));
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs((got[i] as number) - (want[i] as number));
    if (!(d <= worst)) worst = d;
  }
  return worst / scale;
}
