import { PeftError, Rng, invalidOption, requirePositiveInt } from '@peftjs/core';

/** Options of `kmeans`; invalid values throw `INVALID_OPTION`. */
export interface KMeansOptions {
  /** Number of clusters. */
  k: number;
  /** The only source of randomness (k-means++ seeding); the same seed gives the same result. */
  rng: Rng;
  /** Independent seedings; the run with the lowest inertia wins (first one on ties). Default 1. */
  nInit?: number;
  /** Maximum Lloyd iterations per run. Default 300. */
  maxIter?: number;
  /** Stop when the total squared centroid shift is ≤ tol · (mean per-dimension variance), as scikit-learn. Default 1e-4. */
  tol?: number;
}

/** The winning k-means run. */
export interface KMeansResult {
  /** `k × dims`, row-major. */
  centroids: Float32Array;
  /** Cluster of every row, consistent with `centroids` (a final assignment step runs after the last update). */
  labels: Int32Array;
  /** Sum of squared Euclidean distances of the rows to their centroid. */
  inertia: number;
  /** Lloyd iterations of the winning run. */
  iterations: number;
}

/**
 * Seeded k-means on raw (un-normalised) vectors, Euclidean distance.
 *
 * - Seeding: greedy k-means++ as scikit-learn does it: the first centre is a uniform row; each later centre is the
 *   best (lowest resulting potential) of `2 + ⌊ln k⌋` candidates drawn with probability ∝ squared distance.
 * - Lloyd iterations; distances use ‖x‖² − 2x·c + ‖c‖² in float64 over host arrays.
 * - A cluster that becomes empty is re-seeded with the row farthest from its current centre (taken from a cluster
 *   that keeps at least one row), as scikit-learn relocates empty clusters.
 * - Stops on unchanged labels, on a total squared centre shift ≤ tol · mean variance, or after `maxIter`.
 */
export function kmeans(data: Float32Array, rows: number, dims: number, options: KMeansOptions): KMeansResult {
  requirePositiveInt('rows', rows);
  requirePositiveInt('dims', dims);
  if (!(data instanceof Float32Array)) invalidOption('data', data, 'a Float32Array');
  if (data.length !== rows * dims) {
    throw new PeftError(
      'SHAPE_MISMATCH',
      `k-means data has ${data.length} values; expected rows × dims = ${rows} × ${dims} = ${rows * dims}`,
    );
  }
  const k = requirePositiveInt('k', options.k);
  if (!(options.rng instanceof Rng)) invalidOption('rng', options.rng, 'an Rng from @peftjs/core');
  const nInit = requirePositiveInt('nInit', options.nInit ?? 1);
  const maxIter = requirePositiveInt('maxIter', options.maxIter ?? 300);
  const tol = options.tol ?? 1e-4;
  if (typeof tol !== 'number' || !Number.isFinite(tol) || tol < 0)
    invalidOption('tol', tol, 'a finite number ≥ 0');
  if (rows < k) throw new PeftError('INVALID_OPTION', `k-means needs at least k samples: got ${rows} < ${k}`);

  const x = new Float64Array(rows * dims);
  for (let i = 0; i < x.length; i++) {
    const v = data[i] as number;
    if (!Number.isFinite(v)) {
      throw new PeftError(
        'INVALID_OPTION',
        `k-means data must be finite: row ${Math.floor(i / dims)}, column ${i % dims} is ${v}`,
      );
    }
    x[i] = v;
  }
  const space: Space = { x, xNorm: rowNorms(x, rows, dims), n: rows, d: dims };
  const absTol = tol * meanVariance(x, rows, dims);

  let best: RunResult | null = null;
  for (let run = 0; run < nInit; run++) {
    const centers = seedPlusPlus(space, k, options.rng);
    const result = lloyd(space, centers, k, maxIter, absTol);
    if (best === null || result.inertia < best.inertia) best = result;
  }
  const winner = best as RunResult;
  return {
    centroids: Float32Array.from(winner.centers),
    labels: winner.labels,
    inertia: winner.inertia,
    iterations: winner.iterations,
  };
}

interface Space {
  readonly x: Float64Array;
  readonly xNorm: Float64Array;
  readonly n: number;
  readonly d: number;
}

interface RunResult {
  centers: Float64Array;
  labels: Int32Array;
  inertia: number;
  iterations: number;
}

function rowNorms(m: Float64Array, rows: number, dims: number): Float64Array {
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let s = 0;
    const o = i * dims;
    for (let j = 0; j < dims; j++) {
      const v = m[o + j] as number;
      s += v * v;
    }
    out[i] = s;
  }
  return out;
}

function meanVariance(x: Float64Array, n: number, d: number): number {
  let total = 0;
  for (let j = 0; j < d; j++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[i * d + j] as number;
    mean /= n;
    let v = 0;
    for (let i = 0; i < n; i++) {
      const t = (x[i * d + j] as number) - mean;
      v += t * t;
    }
    total += v / n;
  }
  return total / d;
}

function dot(a: Float64Array, ao: number, b: Float64Array, bo: number, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = 0;
  for (; j + 3 < d; j += 4) {
    s0 += (a[ao + j] as number) * (b[bo + j] as number);
    s1 += (a[ao + j + 1] as number) * (b[bo + j + 1] as number);
    s2 += (a[ao + j + 2] as number) * (b[bo + j + 2] as number);
    s3 += (a[ao + j + 3] as number) * (b[bo + j + 3] as number);
  }
  for (; j < d; j++) s0 += (a[ao + j] as number) * (b[bo + j] as number);
  return s0 + s1 + s2 + s3;
}

/** Squared distances of every row to row `c`, min-ed into `closest` (written to `out`); returns their sum. */
function minDistancesTo(space: Space, c: number, closest: Float64Array | null, out: Float64Array): number {
  const { x, xNorm, n, d } = space;
  const cNorm = xNorm[c] as number;
  let pot = 0;
  for (let i = 0; i < n; i++) {
    let dist = (xNorm[i] as number) - 2 * dot(x, i * d, x, c * d, d) + cNorm;
    if (dist < 0) dist = 0;
    if (closest !== null && (closest[i] as number) < dist) dist = closest[i] as number;
    out[i] = dist;
    pot += dist;
  }
  return pot;
}

function seedPlusPlus(space: Space, k: number, rng: Rng): Float64Array {
  const { x, n, d } = space;
  const centers = new Float64Array(k * d);
  const trials = 2 + Math.floor(Math.log(k));
  const first = rng.int(n);
  centers.set(x.subarray(first * d, first * d + d), 0);
  let closest = new Float64Array(n);
  let pot = minDistancesTo(space, first, null, closest);
  let candidate = new Float64Array(n);
  let bestDist = new Float64Array(n);
  const cumulative = new Float64Array(n);
  for (let c = 1; c < k; c++) {
    let acc = 0;
    for (let i = 0; i < n; i++) {
      acc += closest[i] as number;
      cumulative[i] = acc;
    }
    let bestRow = -1;
    let bestPot = Number.POSITIVE_INFINITY;
    for (let t = 0; t < trials; t++) {
      const row = searchRight(cumulative, rng.float() * pot);
      const candPot = minDistancesTo(space, row, closest, candidate);
      if (candPot < bestPot) {
        bestPot = candPot;
        bestRow = row;
        [bestDist, candidate] = [candidate, bestDist];
      }
    }
    centers.set(x.subarray(bestRow * d, bestRow * d + d), c * d);
    [closest, bestDist] = [bestDist, closest];
    pot = bestPot;
  }
  return centers;
}

/** First index whose cumulative weight exceeds `r` (zero-weight rows are never drawn), clipped to the last row. */
function searchRight(cumulative: Float64Array, r: number): number {
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((cumulative[mid] as number) > r) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Nearest centre of every row; `minDist` gets the squared distance to it. Ties go to the lower centre index. */
function assign(
  space: Space,
  centers: Float64Array,
  k: number,
  labels: Int32Array,
  minDist: Float64Array,
): void {
  const { x, xNorm, n, d } = space;
  const cNorm = rowNorms(centers, k, d);
  for (let i = 0; i < n; i++) {
    const xo = i * d;
    let bestC = 0;
    let bestScore = Number.POSITIVE_INFINITY;
    for (let c = 0; c < k; c++) {
      const score = (cNorm[c] as number) - 2 * dot(x, xo, centers, c * d, d);
      if (score < bestScore) {
        bestScore = score;
        bestC = c;
      }
    }
    labels[i] = bestC;
    const dist = (xNorm[i] as number) + bestScore;
    minDist[i] = Math.max(dist, 0);
  }
}

/** New centres as cluster means, re-seeding empty clusters; returns whether any cluster was re-seeded. */
function update(
  space: Space,
  k: number,
  labels: Int32Array,
  minDist: Float64Array,
  out: Float64Array,
  counts: Int32Array,
): boolean {
  const { x, n, d } = space;
  out.fill(0);
  counts.fill(0);
  for (let i = 0; i < n; i++) {
    const c = labels[i] as number;
    counts[c] = (counts[c] as number) + 1;
    const xo = i * d;
    const co = c * d;
    for (let j = 0; j < d; j++) out[co + j] = (out[co + j] as number) + (x[xo + j] as number);
  }
  const empty: number[] = [];
  for (let c = 0; c < k; c++) if (counts[c] === 0) empty.push(c);
  if (empty.length > 0) {
    // Farthest rows first (index breaks ties, for determinism); a donor cluster must keep one row.
    const order = Array.from({ length: n }, (_, i) => i).sort(
      (a, b) => (minDist[b] as number) - (minDist[a] as number) || a - b,
    );
    let next = 0;
    for (const c of empty) {
      let row = order[next++] as number;
      while ((counts[labels[row] as number] as number) <= 1) row = order[next++] as number;
      const donor = labels[row] as number;
      counts[donor] = (counts[donor] as number) - 1;
      counts[c] = 1;
      const xo = row * d;
      for (let j = 0; j < d; j++) {
        const v = x[xo + j] as number;
        out[donor * d + j] = (out[donor * d + j] as number) - v;
        out[c * d + j] = v;
      }
    }
  }
  for (let c = 0; c < k; c++) {
    const inv = 1 / (counts[c] as number);
    const co = c * d;
    for (let j = 0; j < d; j++) out[co + j] = (out[co + j] as number) * inv;
  }
  return empty.length > 0;
}

function lloyd(space: Space, initial: Float64Array, k: number, maxIter: number, absTol: number): RunResult {
  const { x, n, d } = space;
  let centers: Float64Array = initial;
  let next: Float64Array = new Float64Array(k * d);
  const counts = new Int32Array(k);
  let labels = new Int32Array(n);
  let previous = new Int32Array(n);
  const minDist = new Float64Array(n);
  let iterations = 0;
  let settled = false;
  for (let iter = 0; iter < maxIter; iter++) {
    iterations = iter + 1;
    [labels, previous] = [previous, labels];
    assign(space, centers, k, labels, minDist);
    const relocated = update(space, k, labels, minDist, next, counts);
    let shift = 0;
    for (let i = 0; i < centers.length; i++) {
      const t = (next[i] as number) - (centers[i] as number);
      shift += t * t;
    }
    [centers, next] = [next, centers];
    // Unchanged labels mean the centres did not move either (unless one was just re-seeded).
    if (iter > 0 && !relocated && sameLabels(labels, previous)) {
      settled = true;
      break;
    }
    if (shift <= absTol) break;
  }
  if (!settled) assign(space, centers, k, labels, minDist);
  // Exact inertia from differences (the norm trick can lose precision on large vectors).
  let inertia = 0;
  for (let i = 0; i < n; i++) {
    const xo = i * d;
    const co = (labels[i] as number) * d;
    for (let j = 0; j < d; j++) {
      const t = (x[xo + j] as number) - (centers[co + j] as number);
      inertia += t * t;
    }
  }
  return { centers, labels, inertia, iterations };
}

function sameLabels(a: Int32Array, b: Int32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
