import { createHash } from 'node:crypto';
import { basename, dirname, isAbsolute, relative, sep } from 'node:path';
import {
  PeftError,
  type PrepareBatch,
  type PrepareData,
  Rng,
  type Seed,
  type Tensor1D,
  type Tensor4D,
  invalidOption,
  requirePositiveInt,
  tf,
} from '@peftjs/core';
import { dataProblemsError, forEachLimit, labelProblems, splitLabel } from './check.js';
import { inferClassCount } from './classes.js';
import { type ImageDecoder, decodeImage, resizeCubic, toFloat, validateDecodeOptions } from './decode.js';
import type { IdxDataset } from './idx.js';
import { type InputLimits, resolveLimits } from './limits.js';
import { type NormalizationName, channelStats, isNormalizationName } from './normalize.js';
import type { LabeledSample, Split } from './split.js';

/** Options of the `ImageDataset` constructor; invalid values throw `INVALID_OPTION`. */
export interface ImageDatasetOptions {
  /** Model input `[height, width]`; every image is resized to it (bicubic). */
  readonly imageSize: readonly [number, number];
  /** Channels of the model input: 3 (RGB) or 1 (grayscale); images are converted to it. */
  readonly channels: 1 | 3;
  /** Per-channel normalisation preset applied to pixels in [0, 1] (see `NORMALIZATION_PRESETS`). */
  readonly normalization: NormalizationName;
  /** Budget of the LRU cache of decoded images, in bytes (default 256 MB; 0 disables it). */
  readonly cacheBytes?: number;
  /** Overrides the split's class count (default: the split's `numClasses`, else the largest label + 1). */
  readonly numClasses?: number;
  /** Replaces `decodeImage` for list splits (tests, custom formats). */
  readonly decoder?: ImageDecoder;
  /** Images decoded in parallel (default 8). */
  readonly concurrency?: number;
  /** Size limits passed to the decoder (default `DEFAULT_INPUT_LIMITS`). */
  readonly limits?: Partial<InputLimits>;
}

/** Options of `ImageDataset.batches`; invalid values throw `INVALID_OPTION`. */
export interface BatchOptions {
  /** Images per batch (positive integer); the last batch may be smaller unless `dropLast`. */
  readonly batchSize: number;
  /** Shuffle with a permutation drawn from (seed, epoch); default false (list order). */
  readonly shuffle?: boolean;
  /** Seed of the shuffle (finite number or string; default 0). Ignored without `shuffle`. */
  readonly seed?: Seed;
  /**
   * Epoch index (non-negative integer, default 0): each epoch draws its own permutation. Ignored without
   * `shuffle`.
   */
  readonly epoch?: number;
  /** Drop the last batch when it is smaller than `batchSize` (default false). */
  readonly dropLast?: boolean;
}

/**
 * One batch. The dataset owns the tensors: they are disposed when the consumer asks for the next batch or stops
 * iterating, so a consumer must not keep them (`tf.clone` or copy what it needs beyond that point).
 */
export interface DatasetBatch extends PrepareBatch {
  /** NHWC float32, normalised. */
  readonly images: Tensor4D;
  /** int32 class indices. */
  readonly labels: Tensor1D;
  /** Sample indices (positions in the split) in batch order. */
  readonly indices: number[];
}

/** What a run manifest records about its data. */
export interface DatasetDescription {
  /** The split's name, or the IDX images file name. */
  readonly name: string;
  /** `list` for a split of image files, `idx` for an in-memory IDX dataset. */
  readonly kind: 'list' | 'idx';
  /** Number of samples. */
  readonly size: number;
  /** Number of classes the labels are checked against. */
  readonly numClasses: number;
  /** Model input `[height, width]` every image is resized to. */
  readonly imageSize: readonly [number, number];
  /** Channels of the produced images. */
  readonly channels: 1 | 3;
  /** Name of the normalisation preset. */
  readonly normalization: NormalizationName;
  /** Per-channel mean subtracted (`channels` values). */
  readonly mean: number[];
  /** Per-channel standard deviation divided by (`channels` values). */
  readonly std: number[];
  /** The resize filter, in words. */
  readonly resize: 'bicubic (libvips cubic, Catmull-Rom)';
  /** `ImageDataset.fingerprint()`: sha256 (hex) of the sample list and preprocessing. */
  readonly fingerprint: string;
}

/** Counters of the decoded-image LRU cache (`ImageDataset.cacheStats`). */
export interface CacheStats {
  /** Image loads served from the cache. */
  readonly hits: number;
  /** Image loads that had to decode the file (or resize the IDX image). */
  readonly misses: number;
  /** Images currently cached. */
  readonly entries: number;
  /** Bytes currently held by the cache (uint8 pixels where lossless, else float32). */
  readonly bytes: number;
}

const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;

/** Cached pixels: uint8 when every value is exactly k/255 (4× smaller), else the float32 array itself. */
type Cached = Uint8Array | Float32Array;

/** Stores uint8 when lossless: decodeImage outputs k/255 in float32, so a VTAB-1k train split fits the default. */
function compact(pixels: Float32Array): Cached {
  const out = new Uint8Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const v = pixels[i] as number;
    const k = Math.round(v * 255);
    if (k < 0 || k > 255 || Math.fround(k / 255) !== v) return pixels;
    out[i] = k;
  }
  return out;
}

class LruCache {
  private readonly entries = new Map<number, Cached>();
  bytes = 0;

  constructor(private readonly limit: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: number): Cached | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: number, value: Cached): void {
    if (value.byteLength > this.limit || this.entries.has(key)) return;
    this.entries.set(key, value);
    this.bytes += value.byteLength;
    for (const [oldest, old] of this.entries) {
      if (this.bytes <= this.limit) break;
      this.entries.delete(oldest);
      this.bytes -= old.byteLength;
    }
  }
}

/** Where the pixels come from: image files of a split, or in-memory IDX arrays. */
type Source =
  | { readonly kind: 'list'; readonly split: Split }
  | { readonly kind: 'idx'; readonly idx: IdxDataset };

function isSplit(source: Split | IdxDataset): source is Split {
  return 'samples' in source;
}

/**
 * A split (image files) or an IDX dataset (in-memory arrays) as a stream of normalised NHWC batches. Only the
 * current batch is decoded (the next one is prefetched), plus an LRU cache of decoded images, so memory stays
 * bounded by the batch size and `cacheBytes`.
 */
export class ImageDataset {
  /** Number of samples. */
  readonly size: number;
  /**
   * Number of classes: the option, else the split's (or IDX dataset's) `numClasses`, else the largest label +
   * 1.
   */
  readonly numClasses: number;
  /** Model input `[height, width]`. */
  readonly imageSize: readonly [number, number];
  /** Channels of the produced images. */
  readonly channels: 1 | 3;
  /** Normalisation preset applied to every image. */
  readonly normalization: NormalizationName;
  private readonly source: Source;
  private readonly labels: Int32Array;
  private readonly decoder: ImageDecoder;
  private readonly concurrency: number;
  private readonly limits: InputLimits;
  private readonly cache: LruCache;
  /** Per channel, the normalised value of each 8-bit level (applies cached uint8 pixels without a float pass). */
  private readonly lut: Float32Array[];
  private readonly mean: number[];
  private readonly std: number[];
  private hits = 0;
  private misses = 0;
  private fingerprintValue: string | null = null;

  constructor(source: Split | IdxDataset, options: ImageDatasetOptions) {
    validateDecodeOptions({ size: options.imageSize, channels: options.channels });
    if (!isNormalizationName(options.normalization)) {
      invalidOption('normalization', options.normalization, 'one of inception, imagenet');
    }
    const cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    if (typeof cacheBytes !== 'number' || !(cacheBytes >= 0)) {
      invalidOption('cacheBytes', cacheBytes, 'a non-negative number of bytes');
    }
    this.concurrency = requirePositiveInt('concurrency', options.concurrency ?? 8);
    this.limits = resolveLimits(options.limits);
    if (options.numClasses !== undefined) requirePositiveInt('numClasses', options.numClasses);
    this.imageSize = [options.imageSize[0], options.imageSize[1]];
    this.channels = options.channels;
    this.normalization = options.normalization;
    this.decoder = options.decoder ?? decodeImage;
    this.cache = new LruCache(cacheBytes);

    if (isSplit(source)) {
      this.source = { kind: 'list', split: source };
      this.labels = Int32Array.from(source.samples, (s) => s.label);
      this.numClasses = options.numClasses ?? source.numClasses ?? inferFromSplit(source, this.labels);
      // Broken lists fail here, not halfway through an epoch; missing/corrupt files are for checkSplit.
      const problems = labelProblems(source, this.numClasses);
      if (problems.length > 0) throw dataProblemsError(splitLabel(source), problems);
    } else {
      this.source = { kind: 'idx', idx: source };
      this.labels = source.labels;
      this.numClasses = options.numClasses ?? source.numClasses;
      const bad = this.labels.findIndex((l) => l < 0 || l >= this.numClasses);
      if (bad >= 0) {
        throw new PeftError(
          'INVALID_CONFIG',
          `IDX labels file ${source.files.labels}: label ${this.labels[bad]} at index ${bad} out of range [0, ${this.numClasses})`,
        );
      }
    }
    this.size = this.labels.length;
    const { mean, std } = channelStats(this.normalization, this.channels);
    this.mean = mean;
    this.std = std;
    this.lut = mean.map((m, c) => {
      const table = new Float32Array(256);
      for (let k = 0; k < 256; k++) table[k] = (Math.fround(k / 255) - m) / (std[c] as number);
      return table;
    });
  }

  /**
   * Batches of one epoch. The order is the split's unless `shuffle`, then
   * `new Rng(seed).split(`epoch:${epoch}`).permutation(size)`: the same (seed, epoch) always gives the same
   * batches, every epoch a different order, and every sample exactly once per epoch. Batch tensors are disposed
   * when the consumer moves on (see `DatasetBatch`).
   */
  batches(options: BatchOptions): AsyncGenerator<DatasetBatch, void, undefined> {
    const batchSize = requirePositiveInt('batchSize', options.batchSize);
    const epoch = options.epoch ?? 0;
    if (!Number.isInteger(epoch) || epoch < 0) invalidOption('epoch', epoch, 'a non-negative integer');
    const seed = options.seed ?? 0;
    if (typeof seed !== 'string' && !(typeof seed === 'number' && Number.isFinite(seed))) {
      invalidOption('seed', seed, 'a finite number or a string');
    }
    const order = options.shuffle
      ? new Rng(seed).split(`epoch:${epoch}`).permutation(this.size)
      : Array.from({ length: this.size }, (_, i) => i);
    const groups: number[][] = [];
    for (let start = 0; start < order.length; start += batchSize) {
      const group = order.slice(start, start + batchSize);
      if (group.length < batchSize && options.dropLast) break;
      groups.push(group);
    }
    return this.stream(groups);
  }

  private async *stream(groups: number[][]): AsyncGenerator<DatasetBatch, void, undefined> {
    const [h, w] = this.imageSize;
    let prefetched: Promise<Float32Array> | undefined;
    for (let b = 0; b < groups.length; b++) {
      const indices = groups[b] as number[];
      const pixels = await (prefetched ?? this.loadBatch(indices));
      // Decode the next batch while the consumer works on this one.
      const next = groups[b + 1];
      prefetched = next ? this.loadBatch(next) : undefined;
      prefetched?.catch(() => undefined); // surfaced when awaited; silenced if the consumer stops early
      const labels = Int32Array.from(indices, (i) => this.labels[i] as number);
      const imagesT = tf.tensor4d(pixels, [indices.length, h, w, this.channels], 'float32');
      const labelsT = tf.tensor1d(labels, 'int32');
      try {
        yield { images: imagesT, labels: labelsT, indices };
      } finally {
        imagesT.dispose();
        labelsT.dispose();
      }
    }
  }

  /** Normalised NHWC pixels of `indices`. */
  private async loadBatch(indices: number[]): Promise<Float32Array> {
    const [h, w] = this.imageSize;
    const per = h * w * this.channels;
    const out = new Float32Array(indices.length * per);
    await forEachLimit(indices.length, this.concurrency, async (j) => {
      const pixels = await this.pixels(indices[j] as number);
      this.writeNormalized(pixels, out, j * per);
    });
    return out;
  }

  private writeNormalized(pixels: Cached, out: Float32Array, offset: number): void {
    const c = this.channels;
    if (pixels instanceof Uint8Array) {
      for (let ch = 0; ch < c; ch++) {
        const table = this.lut[ch] as Float32Array;
        for (let i = ch; i < pixels.length; i += c) out[offset + i] = table[pixels[i] as number] as number;
      }
    } else {
      for (let ch = 0; ch < c; ch++) {
        const m = this.mean[ch] as number;
        const s = this.std[ch] as number;
        for (let i = ch; i < pixels.length; i += c) out[offset + i] = ((pixels[i] as number) - m) / s;
      }
    }
  }

  /** Pixels in [0, 1] of one sample, from the cache or freshly decoded. */
  private async pixels(index: number): Promise<Cached> {
    const cached = this.cache.get(index);
    if (cached) {
      this.hits++;
      return cached;
    }
    this.misses++;
    const decoded = compact(await this.decode(index));
    this.cache.set(index, decoded);
    return decoded;
  }

  private async decode(index: number): Promise<Float32Array> {
    const [h, w] = this.imageSize;
    const expected = h * w * this.channels;
    if (this.source.kind === 'idx') {
      const { idx } = this.source;
      const n = idx.height * idx.width;
      const raw = {
        data: idx.images.subarray(index * n, (index + 1) * n),
        width: idx.width,
        height: idx.height,
      };
      return toFloat(await resizeCubic({ ...raw, channels: 1 }, this.imageSize), this.channels);
    }
    const sample = this.source.split.samples[index] as LabeledSample;
    const pixels = await this.decoder(sample.path, {
      size: this.imageSize,
      channels: this.channels,
      limits: this.limits,
      ...(sample.source ? { source: sample.source } : {}),
    });
    if (pixels.length !== expected) {
      throw new PeftError(
        'SHAPE_MISMATCH',
        `decoder returned ${pixels.length} values for ${sample.path}; expected ${h}x${w}x${this.channels} = ${expected}`,
      );
    }
    return pixels;
  }

  /** Hit/miss counters and current size of the decoded-image cache. */
  cacheStats(): CacheStats {
    return { hits: this.hits, misses: this.misses, entries: this.cache.size, bytes: this.cache.bytes };
  }

  /**
   * sha256 (hex) over the sorted (relative path, label) list — paths relative to the samples' common folder, so
   * moving the data keeps it — and the preprocessing options. IDX datasets hash their pixel and label bytes.
   */
  fingerprint(): string {
    if (this.fingerprintValue) return this.fingerprintValue;
    const hash = createHash('sha256');
    hash.update(
      JSON.stringify({
        format: 'peftjs-data/1',
        kind: this.source.kind,
        imageSize: this.imageSize,
        channels: this.channels,
        normalization: this.normalization,
        resize: 'cubic',
        numClasses: this.numClasses,
      }),
    );
    if (this.source.kind === 'list') {
      const { samples } = this.source.split;
      const root = commonDir(samples.map((s) => s.path));
      const entries = samples.map((s) => `${relative(root, s.path).split(sep).join('/')}\t${s.label}`);
      entries.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      for (const entry of entries) hash.update(`\n${entry}`);
    } else {
      const { idx } = this.source;
      hash.update(`\n${idx.count}x${idx.height}x${idx.width}\n`);
      hash.update(idx.images);
      hash.update(new Uint8Array(idx.labels.buffer, idx.labels.byteOffset, idx.labels.byteLength));
    }
    this.fingerprintValue = hash.digest('hex');
    return this.fingerprintValue;
  }

  /** What a run manifest records about this dataset (computes the fingerprint on first use). */
  describe(): DatasetDescription {
    return {
      name: this.source.kind === 'list' ? this.source.split.name : basename(this.source.idx.files.images),
      kind: this.source.kind,
      size: this.size,
      numClasses: this.numClasses,
      imageSize: this.imageSize,
      channels: this.channels,
      normalization: this.normalization,
      mean: [...this.mean],
      std: [...this.std],
      resize: 'bicubic (libvips cubic, Catmull-Rom)',
      fingerprint: this.fingerprint(),
    };
  }
}

/** Largest label + 1, checked by `inferClassCount`; 1 when no label is non-negative (the label checks report those). */
function inferFromSplit(split: Split, labels: Int32Array): number {
  if (!labels.some((l) => l >= 0)) return 1;
  return inferClassCount(
    labels,
    (i) => {
      const sample = split.samples[i] as LabeledSample;
      return sample.source ? `${sample.source.file}:${sample.source.line}` : sample.path;
    },
    splitLabel(split),
  );
}

/** Deepest folder containing every path. */
function commonDir(paths: readonly string[]): string {
  if (paths.length === 0) return '';
  let common = dirname(paths[0] as string);
  for (const p of paths) {
    while (common !== dirname(common) && isOutside(relative(common, p))) common = dirname(common);
  }
  return common;
}

function isOutside(rel: string): boolean {
  return rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel);
}

/** Core's `PrepareData` (fixed order, no shuffle) over a dataset, for plugins' `prepare`. */
export function asPrepareData(dataset: ImageDataset, batchSize: number): PrepareData {
  requirePositiveInt('batchSize', batchSize);
  return { size: dataset.size, batches: () => dataset.batches({ batchSize }) };
}
