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
  readonly key: string;
  readonly owner: string;
  readonly tokens: Tensor3D;
  /**
   * The tokens depend on parameters only, never on the image (`[1, n, D]`). While attention keeps prompt rows
   * isolated from image rows (decoupled attention), the backbone computes such segments once per forward at batch 1
   * and, with a prompt cache, once per parameter state.
   */
  readonly independent: boolean;
}

export interface SegmentLayout {
  readonly key: string;
  readonly owner: string;
  readonly start: number;
  readonly length: number;
  readonly independent: boolean;
}

export interface SegmentOptions {
  /** Insert before this segment instead of at the end (when it exists). */
  before?: string;
  /** Declare the tokens image-independent (they must be `[1, n, D]`). Default false. */
  independent?: boolean;
}

export interface TokenLayout {
  readonly numImageTokens: number;
  readonly numPromptTokens: number;
  readonly total: number;
  readonly segments: readonly SegmentLayout[];
}

export class TokenStream {
  readonly image: Tensor3D;
  readonly segments: readonly PromptSegment[];

  constructor(image: Tensor3D, segments: readonly PromptSegment[] = []) {
    this.image = image;
    this.segments = segments;
  }

  get batchSize(): number {
    return this.image.shape[0];
  }

  get numImageTokens(): number {
    return this.image.shape[1];
  }

  get numPromptTokens(): number {
    return this.segments.reduce((n, s) => n + s.tokens.shape[1], 0);
  }

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

  withImage(image: Tensor3D): TokenStream {
    return new TokenStream(image, this.segments);
  }

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
