import type { VitConfig, VitGeometry } from './config.js';
import type { AttentionArgs, AttentionResult, ForwardInfo } from './plugin.js';
import type { Rng } from './random.js';
import type { ParameterRegistry } from './registry.js';
import { tf } from './tf.js';
import type { Scalar, Tensor, Tensor2D, Tensor3D, Tensor4D } from './tf.js';
import type { TokenLayout, TokenStream } from './tokens.js';

/**
 * The contract between a backbone (which owns the forward pass) and the hook driver (which runs the plugins at
 * each site). A backbone calls every method of the driver at its site, passing the computation it would do
 * without plugins as `base`.
 */
export interface HookDriver {
  readonly info: ForwardInfo;
  /** Seeded stream for the backbone's own randomness in this forward (stochastic depth). */
  readonly rng: Rng;
  embed(stream: TokenStream): TokenStream;
  blockStart(stream: TokenStream, block: number): TokenStream;
  qkv(input: Tensor3D, block: number, base: (input: Tensor3D) => Tensor3D): Tensor3D;
  attention(args: AttentionArgs, base: (args: AttentionArgs) => AttentionResult): AttentionResult;
  attnOut(output: Tensor3D, block: number, layout: TokenLayout): Tensor3D;
  mlp(input: Tensor3D, block: number, base: (input: Tensor3D) => Tensor3D): Tensor3D;
  blockEnd(stream: TokenStream, block: number): TokenStream;
  head(features: Tensor2D, base: (features: Tensor2D) => Tensor2D): Tensor2D;
  auxLoss(output: { logits: Tensor2D; tokens: TokenStream }): void;
  /** Whether the attention of `block` keeps prompt rows independent of image rows (see `PeftPlugin.isolatesPrompts`). */
  promptsIsolated(block: number): boolean;
  /** Losses added by plugins during this forward. */
  readonly losses: readonly NamedLoss[];
}

export interface NamedLoss {
  readonly name: string;
  readonly plugin: string;
  readonly value: Scalar;
  readonly weight: number;
}

export interface BackboneForwardOptions {
  readonly training: boolean;
  readonly driver: HookDriver;
  /** Keep every block's output stream tensor and attention logits (analysis, SHIP's data pass). */
  readonly collect?: boolean;
  /** Reuse image-independent prompt computations across eval calls (see `PromptCache`). */
  readonly promptCache?: PromptCache;
  /** Classifier to use instead of the backbone's own head (a PEFT model's head), weight stored `[D, C]`. */
  readonly head?: { readonly weight: Tensor; readonly bias: Tensor };
}

/**
 * Per-block results for image-independent prompt rows (LayerNorm-1 output, q/k/v, block output), valid for one
 * state of the parameters. Evaluation reuses them instead of recomputing; anything that changes parameters must
 * `clear()` it (PeftModel does on every training forward and in `applyGradients`).
 */
export class PromptCache {
  private readonly entries = new Map<string, Record<string, Tensor>>();

  get size(): number {
    return this.entries.size;
  }

  get(key: string): Record<string, Tensor> | undefined {
    return this.entries.get(key);
  }

  /** Stores tensors (kept out of any enclosing tidy) under `key`. */
  set(key: string, tensors: Record<string, Tensor>): void {
    this.clearKey(key);
    for (const t of Object.values(tensors)) tf.keep(t);
    this.entries.set(key, tensors);
  }

  private clearKey(key: string): void {
    const old = this.entries.get(key);
    if (old) for (const t of Object.values(old)) t.dispose();
    this.entries.delete(key);
  }

  clear(): void {
    for (const key of [...this.entries.keys()]) this.clearKey(key);
  }
}

export interface BackboneOutput {
  readonly logits: Tensor2D;
  /** Final-normed CLS features `[B, D]` (the head's input). */
  readonly features: Tensor2D;
  /** The stream after the last block, before the final norm. */
  readonly tokens: TokenStream;
  /** With `collect`: every block's full output `[B, N_l, D]` (before the final norm). */
  readonly blockOutputs?: Tensor3D[];
  /** With `collect`: every block's attention logits. */
  readonly attnLogits?: Tensor4D[];
}

/** What `createPeftModel` needs from a backbone. `@peftjs/backbone`'s `VisionTransformer` implements it. */
export interface PeftBackbone {
  readonly config: VitConfig;
  readonly geometry: VitGeometry;
  readonly registry: ParameterRegistry;
  forward(images: Tensor4D, options: BackboneForwardOptions): BackboneOutput;
  /** Replaces the classification head with a fresh one for `numClasses` classes. */
  resetHead(numClasses: number, rng: Rng): void;
}
