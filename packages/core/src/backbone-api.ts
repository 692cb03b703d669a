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
  /** Config, geometry, mode and batch size of this forward call. */
  readonly info: ForwardInfo;
  /** Seeded stream for the backbone's own randomness in this forward (stochastic depth). */
  readonly rng: Rng;
  /** The patch projection `[B, P, p·p·C]` → `[B, P, D]` through the plugins' `patchEmbed` wrappers. */
  patchEmbed(input: Tensor3D, base: (input: Tensor3D) => Tensor3D): Tensor3D;
  /**
   * Runs every `embed` hook on the stream after patch embedding + CLS + position embedding; returns the
   * resulting stream.
   */
  embed(stream: TokenStream): TokenStream;
  /** Runs every `blockStart` hook before block `block`; returns the stream the block should read. */
  blockStart(stream: TokenStream, block: number): TokenStream;
  /**
   * Computes the fused qkv projection of LN1 output `[B, N, D]` → `[B, N, 3D]` through the plugins' `qkv`
   * wrappers around `base`. Throws `SHAPE_MISMATCH` if a hook returns another shape.
   */
  qkv(input: Tensor3D, block: number, base: (input: Tensor3D) => Tensor3D): Tensor3D;
  /**
   * Runs the attention core: `base` (joint softmax attention) wrapped by the `attention` hooks, then shows
   * the resulting logits to every `attnLogits` observer.
   */
  attention(args: AttentionArgs, base: (args: AttentionArgs) => AttentionResult): AttentionResult;
  /** The attention output projection `[B, N, D]` → `[B, N, D]` through the plugins' `proj` wrappers. */
  proj(input: Tensor3D, block: number, base: (input: Tensor3D) => Tensor3D): Tensor3D;
  /**
   * Runs every `attnOut` hook on the attention branch `[B, N, D]` after the output projection, before the
   * residual add.
   */
  attnOut(output: Tensor3D, block: number, layout: TokenLayout): Tensor3D;
  /**
   * Computes the MLP of LN2 output `[B, N, D]` through the plugins' `mlp` wrappers around `base`; the shape
   * must stay `[B, N, D]`.
   */
  mlp(input: Tensor3D, block: number, base: (input: Tensor3D) => Tensor3D): Tensor3D;
  /** The MLP's first linear layer `[B, N, D]` → `[B, N, H]` through the plugins' `fc1` wrappers. */
  fc1(input: Tensor3D, block: number, base: (input: Tensor3D) => Tensor3D): Tensor3D;
  /** The MLP's second linear layer `[B, N, H]` → `[B, N, D]` through the plugins' `fc2` wrappers. */
  fc2(input: Tensor3D, block: number, base: (input: Tensor3D) => Tensor3D): Tensor3D;
  /**
   * Runs every `blockEnd` hook after block `block` (residual adds done); returns the stream the next block
   * reads.
   */
  blockEnd(stream: TokenStream, block: number): TokenStream;
  /**
   * Computes class logits `[B, C]` from final-normed CLS features `[B, D]` through the `head` hooks around
   * `base`.
   */
  head(features: Tensor2D, base: (features: Tensor2D) => Tensor2D): Tensor2D;
  /** Runs every `auxLoss` hook once the logits are known (the last call of a forward). */
  auxLoss(output: { logits: Tensor2D; tokens: TokenStream }): void;
  /** Whether the attention of `block` keeps prompt rows independent of image rows (see `PeftPlugin.isolatesPrompts`). */
  promptsIsolated(block: number): boolean;
  /** Losses added by plugins during this forward. */
  readonly losses: readonly NamedLoss[];
}

/** An auxiliary loss a plugin added with `HookContext.addLoss`. */
export interface NamedLoss {
  /** Name it is logged under (as given to `addLoss`). */
  readonly name: string;
  /** Name of the plugin that added it. */
  readonly plugin: string;
  /** The unweighted loss value. */
  readonly value: Scalar;
  /** Factor applied when it is added to the training loss (default 1). */
  readonly weight: number;
}

/** Options of `PeftBackbone.forward`. */
export interface BackboneForwardOptions {
  /** Training mode: enables stochastic depth (drop path) in the backbone. */
  readonly training: boolean;
  /**
   * Runs the plugins' hooks at each site (`createHookDriver`; with no plugins it runs the plain backbone).
   */
  readonly driver: HookDriver;
  /** Keep every block's output stream tensor and attention logits (analysis, SHIP's data pass). */
  readonly collect?: boolean;
  /** Reuse image-independent prompt computations across eval calls (see `PromptCache`). */
  readonly promptCache?: PromptCache;
  /**
   * Where to read every weight by name (timm naming, the backbone's storage layout; the head's weight `[D, C]`):
   * a PEFT model passes its own registry, so its head and its copies of trained backbone tensors are used while
   * the backbone's own weights stay untouched. Default: the backbone's own weights.
   */
  readonly weights?: (name: string) => Tensor;
}

/**
 * Per-block results for image-independent prompt rows (LayerNorm-1 output, q/k/v, block output), valid for one
 * state of the parameters. Evaluation reuses them instead of recomputing; anything that changes parameters must
 * `clear()` it (PeftModel does on every training forward and in `applyGradients`).
 */
export class PromptCache {
  private readonly entries = new Map<string, Record<string, Tensor>>();

  /** Number of cached entries. */
  get size(): number {
    return this.entries.size;
  }

  /** The tensors stored under `key`, or undefined. They stay owned by the cache: do not dispose them. */
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

  /** Disposes every cached tensor and empties the cache. */
  clear(): void {
    for (const key of [...this.entries.keys()]) this.clearKey(key);
  }
}

/** What `PeftBackbone.forward` returns. Tensors belong to the caller. */
export interface BackboneOutput {
  /** Class logits `[B, C]`. */
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
  /** The backbone's architecture and the class count of its own head. */
  readonly config: VitConfig;
  /** Quantities derived from `config` (`vitGeometry(config)`). */
  readonly geometry: VitGeometry;
  /**
   * The backbone's own tensors (owner `'backbone'`, plus its head under owner `'head'`); a PEFT model adopts
   * them.
   */
  readonly registry: ParameterRegistry;
  /** Runs the ViT on images `[B, H, W, C]`, calling `options.driver` at every hook site. */
  forward(images: Tensor4D, options: BackboneForwardOptions): BackboneOutput;
  /** Replaces the classification head with a fresh one for `numClasses` classes. */
  resetHead(numClasses: number, rng: Rng): void;
}
