/**
 * Shape bookkeeping of tfjs's BatchMatMul: `a` is `[...batchA, m, k]` (or `[..., k, m]` with transposeA), `b` is
 * `[...batchB, k, n]` (or `[..., n, k]` with transposeB); the batch dimensions broadcast NumPy-style.
 */
export interface MatMulPlan {
  /** Shape of the result: the broadcast batch dimensions, then `[m, n]`. */
  readonly outShape: number[];
  /** Number of output matrices (product of the broadcast batch dimensions). */
  readonly batch: number;
  /** Rows of op(A) and of each output matrix. */
  readonly m: number;
  /** Columns of op(B) and of each output matrix. */
  readonly n: number;
  /** The shared (inner) dimension. */
  readonly k: number;
  /** A matrices are stored `[k, m]`. */
  readonly transposeA: boolean;
  /** B matrices are stored `[n, k]`. */
  readonly transposeB: boolean;
  /** Floats between consecutive A matrices in one native call (0 = one A broadcast to every batch). */
  readonly strideA: number;
  /** Floats between consecutive B matrices in one native call (0 = one B broadcast to every batch). */
  readonly strideB: number;
  /**
   * Null when one native call covers every batch (batch dims equal, or one side has a single matrix). Otherwise
   * the index of the A and B matrix for each output batch (general broadcasting such as [2,1] × [1,3]).
   */
  readonly pairs: null | {
    /** Index of the A matrix for each output batch. */
    a: Int32Array;
    /** Index of the B matrix for each output batch. */
    b: Int32Array;
  };
}

function product(dims: readonly number[]): number {
  let p = 1;
  for (const d of dims) p *= d;
  return p;
}

/** NumPy broadcast of two batch shapes; throws the way tfjs does on a mismatch. */
function broadcastShapes(x: readonly number[], y: readonly number[]): number[] {
  const rank = Math.max(x.length, y.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const dx = x[x.length - rank + i] ?? 1;
    const dy = y[y.length - rank + i] ?? 1;
    if (dx !== dy && dx !== 1 && dy !== 1) {
      throw new Error(`Operands could not be broadcast together with shapes ${x} and ${y}.`);
    }
    out[i] = dx === 1 ? dy : dx;
  }
  return out;
}

/** Flat index into a (possibly broadcast) batch shape for each flat output batch index. */
function broadcastIndices(shape: readonly number[], outShape: readonly number[]): Int32Array {
  const total = product(outShape);
  const result = new Int32Array(total);
  const rank = outShape.length;
  const offset = rank - shape.length;
  for (let flat = 0; flat < total; flat++) {
    let rest = flat;
    let index = 0;
    let stride = 1;
    for (let axis = rank - 1; axis >= 0; axis--) {
      const size = outShape[axis] as number;
      const coordinate = rest % size;
      rest = Math.floor(rest / size);
      const own = axis - offset;
      if (own >= 0) {
        const dim = shape[own] as number;
        if (dim !== 1) index += coordinate * stride;
        stride *= dim;
      }
    }
    result[flat] = index;
  }
  return result;
}

/**
 * Plans `matMul(a, b, transposeA, transposeB)` for tensors of shapes `aShape` and `bShape` (rank ≥ 2). Throws
 * an `Error` worded as tfjs's when a rank is below 2, the inner dimensions differ, or the batch dimensions do
 * not broadcast.
 */
export function planMatMul(
  aShape: readonly number[],
  bShape: readonly number[],
  transposeA: boolean,
  transposeB: boolean,
): MatMulPlan {
  if (aShape.length < 2 || bShape.length < 2) {
    throw new Error(
      `Error in matMul: inputs must have rank >= 2, got ranks ${aShape.length} and ${bShape.length}.`,
    );
  }
  const ra = aShape.length;
  const rb = bShape.length;
  const m = (transposeA ? aShape[ra - 1] : aShape[ra - 2]) as number;
  const kA = (transposeA ? aShape[ra - 2] : aShape[ra - 1]) as number;
  const kB = (transposeB ? bShape[rb - 1] : bShape[rb - 2]) as number;
  const n = (transposeB ? bShape[rb - 2] : bShape[rb - 1]) as number;
  if (kA !== kB) {
    throw new Error(
      `Error in matMul: inner shapes (${kA}) and (${kB}) of Tensors with shapes ${aShape} and ${bShape} and ` +
        `transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const outerA = aShape.slice(0, -2);
  const outerB = bShape.slice(0, -2);
  const outer = broadcastShapes(outerA, outerB);
  const batch = product(outer);
  const batchA = product(outerA);
  const batchB = product(outerB);
  const k = kA;
  const simple = (batchA === batch || batchA === 1) && (batchB === batch || batchB === 1);
  return {
    outShape: [...outer, m, n],
    batch,
    m,
    n,
    k,
    transposeA,
    transposeB,
    strideA: batchA === 1 ? 0 : m * k,
    strideB: batchB === 1 ? 0 : k * n,
    pairs: simple ? null : { a: broadcastIndices(outerA, outer), b: broadcastIndices(outerB, outer) },
  };
}
