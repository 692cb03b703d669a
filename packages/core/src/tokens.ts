import { PeftError } from './errors.js';
import { repeatBatch } from './ops.js';
import { tf } from './tf.js';
import type { Tensor3D } from './tf.js';

/**
 * The residual stream between blocks: image tokens (CLS + patches, always first) followed by named prompt
 * segments. Every prompt method in PEFT.js places its tokens after the image tokens; prompts carry no positional
 * embedding and attention is permutation-equivariant, so this equals VPT's CLS|prompts|patches order up to a
 * permutation of rows. Segments let several prompt plugins share one stream without index arithmetic.
 *
 * A stream is immutable: hooks return a new one. Segment tensors are `[B, n, D]` or `[1, n, D]` (image-independent
 * prompts, broadcast to the batch when the stream is materialised).
 */
export interface PromptSegment {
  /** Unique key of the segment within the stream (hooks find, replace and drop segments by it). */
  readonly key: string;
  /** Name of the plugin that inserted it. */
  readonly owner: string;
  /** The prompt tokens, `[B, n, D]`, or `[1, n, D]` broadcast to the batch. */
  readonly tokens: Tensor3D;
  /**
   * The tokens depend on parameters only, never on the image (`[1, n, D]`). While attention keeps prompt rows
   * isolated from image rows (decoupled attention), the backbone computes such segments once per forward at batch 1
   * and, with a prompt cache, once per parameter state.
   */
  readonly independent: boolean;
}

/** Where one prompt segment sits in the full `[B, N, D]` sequence. */
export interface SegmentLayout {
  /** The segment's key. */
  readonly key: string;
  /** Name of the plugin that inserted it. */
  readonly owner: string;
  /** Index of its first token along `N` (the first segment starts at `numImageTokens`). */
  readonly start: number;
  /** Number of tokens `n` in the segment. */
  readonly length: number;
  /** Whether the segment's tokens are image-independent (`PromptSegment.independent`). */
  readonly independent: boolean;
}

/** Options of `TokenStream.withSegment`. */
export interface SegmentOptions {
  /** Insert before this segment instead of at the end (when it exists). */
  before?: string;
  /** Declare the tokens image-independent (they must be `[1, n, D]`). Default false. */
  independent?: boolean;
}

/**
 * Positions along the token axis `N` of a materialised stream: image tokens first, then each segment in
 * order.
 */
export interface TokenLayout {
  /** CLS + patch tokens at the start of the sequence. */
  readonly numImageTokens: number;
  /** Tokens over all prompt segments. */
  readonly numPromptTokens: number;
  /** `numImageTokens + numPromptTokens`: the `N` of the full sequence. */
  readonly total: number;
  /** Every prompt segment, in stream order. */
  readonly segments: readonly SegmentLayout[];
}

/**
 * The residual stream between blocks (see `PromptSegment`): image tokens `[B, N_img, D]` plus named prompt
 * segments. Immutable: every `with…` method returns a new stream sharing the unchanged tensors.
 */
export class TokenStream {
  /** Image tokens (CLS + patches) `[B, N_img, D]`. */
  readonly image: Tensor3D;
  /** Prompt segments in order (placed after the image tokens). */
  readonly segments: readonly PromptSegment[];

  constructor(image: Tensor3D, segments: readonly PromptSegment[] = []) {
    this.image = image;
    this.segments = segments;
  }

  /** Batch size `B` (from the image tokens). */
  get batchSize(): number {
    return this.image.shape[0];
  }

  /** `N_img`: CLS + patch tokens. */
  get numImageTokens(): number {
    return this.image.shape[1];
  }

  /** Tokens over all prompt segments. */
  get numPromptTokens(): number {
    return this.segments.reduce((n, s) => n + s.tokens.shape[1], 0);
  }

  /** The segment with `key`, or undefined. */
  segment(key: string): PromptSegment | undefined {
    return this.segments.find((s) => s.key === key);
  }

  /** Replaces segment `key` in place, or inserts it (at the end, or before segment `before` when present). */
  withSegment(key: string, owner: string, tokens: Tensor3D, options: SegmentOptions = {}): TokenStream {
    const dim = this.image.shape[2];
    if (tokens.rank !== 3 || tokens.shape[2] !== dim) {
      throw new PeftError(
        'SHAPE_MISMATCH',
        `prompt segment "${key}" must be [B|1, n, ${dim}]; got [${tokens.shape}]`,
      );
    }
    if (tokens.shape[0] !== 1 && tokens.shape[0] !== this.batchSize) {
      throw new PeftError(
        'SHAPE_MISMATCH',
        `prompt segment "${key}" has batch ${tokens.shape[0]}; expected 1 or ${this.batchSize}`,
      );
    }
    const independent = options.independent ?? false;
    if (independent && tokens.shape[0] !== 1) {
      throw new PeftError(
        'SHAPE_MISMATCH',
        `image-independent segment "${key}" must have batch 1; got [${tokens.shape}]`,
      );
    }
    const existing = this.segments.findIndex((s) => s.key === key);
    const next = [...this.segments];
    const segment: PromptSegment = { key, owner, tokens, independent };
    if (existing >= 0) {
      next[existing] = segment;
    } else {
      const at = options.before === undefined ? -1 : next.findIndex((s) => s.key === options.before);
      if (at >= 0) next.splice(at, 0, segment);
      else next.push(segment);
    }
    return new TokenStream(this.image, next);
  }

  /** The same stream without segment `key` (unchanged when there is none). */
  withoutSegment(key: string): TokenStream {
    return new TokenStream(
      this.image,
      this.segments.filter((s) => s.key !== key),
    );
  }

  /** Keeps only the segments for which `keep` is true. */
  filterSegments(keep: (segment: PromptSegment) => boolean): TokenStream {
    return new TokenStream(this.image, this.segments.filter(keep));
  }

  /** The same segments with new image tokens. */
  withImage(image: Tensor3D): TokenStream {
    return new TokenStream(image, this.segments);
  }

  /** Where each part of the stream sits in `toTensor()`'s `[B, N, D]` sequence. */
  layout(): TokenLayout {
    let start = this.numImageTokens;
    const segments = this.segments.map((s) => {
      const entry = {
        key: s.key,
        owner: s.owner,
        start,
        length: s.tokens.shape[1],
        independent: s.independent,
      };
      start += entry.length;
      return entry;
    });
    return {
      numImageTokens: this.numImageTokens,
      numPromptTokens: start - this.numImageTokens,
      total: start,
      segments,
    };
  }

  /** Every segment's tokens, batch-1 segments repeated to the batch. */
  private batchedSegments(): Tensor3D[] {
    const batch = this.image.shape[0];
    return this.segments.map((s) => (s.tokens.shape[0] === batch ? s.tokens : repeatBatch(s.tokens, batch)));
  }

  /** The full `[B, N, D]` sequence. */
  toTensor(): Tensor3D {
    if (this.segments.length === 0) return this.image;
    return tf.concat([this.image, ...this.batchedSegments()], 1) as Tensor3D;
  }

  /** All prompt tokens `[B, N_p, D]` in segment order, or null without prompts. */
  promptTensor(): Tensor3D | null {
    const parts = this.batchedSegments();
    if (parts.length === 0) return null;
    return parts.length === 1 ? (parts[0] as Tensor3D) : (tf.concat(parts, 1) as Tensor3D);
  }

  /** The same stream with image-independent segments moved after all the others (attention is order-free). */
  independentLast(): TokenStream {
    return new TokenStream(this.image, [
      ...this.segments.filter((s) => !s.independent),
      ...this.segments.filter((s) => s.independent),
    ]);
  }

  /** Splits a `[B, N, D]` tensor laid out like `layout` back into a stream (every segment image-dependent). */
  static fromTensor(x: Tensor3D, layout: TokenLayout): TokenStream {
    if (x.shape[1] !== layout.total) {
      throw new PeftError(
        'SHAPE_MISMATCH',
        `token tensor has ${x.shape[1]} tokens; layout expects ${layout.total}`,
      );
    }
    if (layout.segments.length === 0) return new TokenStream(x);
    const [batch, , dim] = x.shape;
    const image = tf.slice(x, [0, 0, 0], [batch, layout.numImageTokens, dim]) as Tensor3D;
    const segments = layout.segments.map((s) => ({
      key: s.key,
      owner: s.owner,
      tokens: tf.slice(x, [0, s.start, 0], [batch, s.length, dim]) as Tensor3D,
      independent: false,
    }));
    return new TokenStream(image, segments);
  }
}
