import type { VitConfig, VitGeometry } from './config.js';
import type { ParameterEntry, ParameterKind } from './registry.js';
import type { Rng } from './random.js';
import type { Scalar, Tensor, Tensor1D, Tensor2D, Tensor3D, Tensor4D, Variable } from './tf.js';
import type { TokenLayout, TokenStream } from './tokens.js';

/** Version of the hook API below. A plugin states the version it was written against. */
export const HOOK_SPEC_VERSION = 1;

/** JSON values: plugin options and artifacts must survive a round trip through `adapter_config.json`. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** A JSON object: the shape of plugin `options` and of each plugin's artifact record. */
export type JsonObject = { [key: string]: JsonValue };

/**
 * Ordering rule: hooks run tier by tier (`pre`, then `normal`, then `post`) and, within a tier, in the order the
 * plugins were listed. For wrapping hooks (`qkv`, `mlp`, `attention`, `head`) "runs first" means "wraps the base
 * first", so the last plugin in that order is the outermost wrapper.
 */
export type PluginTier = 'pre' | 'normal' | 'post';
/** Every tier in run order; a plugin with any other `tier` is rejected as `PLUGIN_INVALID`. */
export const PLUGIN_TIERS = ['pre', 'normal', 'post'] as const satisfies readonly PluginTier[];

/** Sites where a plugin replaces the computation; two plugins there conflict unless one declares it composes. */
export type ExclusiveSite = 'attention' | 'head';
/** Every exclusive site, in the order conflicts are checked. */
export const EXCLUSIVE_SITES: readonly ExclusiveSite[] = ['attention', 'head'];

/**
 * Facts about the forward call in progress, shared by every hook context and by the backbone's hook driver.
 */
export interface ForwardInfo {
  /** The model's config (with the model's own `numClasses`). */
  readonly config: VitConfig;
  /** Patch grid and token counts derived from `config`. */
  readonly geometry: VitGeometry;
  /**
   * True in training mode: stochastic depth and plugin dropout are active and auxiliary losses are expected.
   */
  readonly training: boolean;
  /** Number of images `B` in the batch. */
  readonly batchSize: number;
  /** Training epoch the forward belongs to (0-based; set by the training loop, 0 otherwise). */
  readonly epoch: number;
}

/** What a hook receives as its first argument: its own plugin's view of the running forward pass. */
export interface HookContext extends ForwardInfo {
  /** Name of the plugin this context belongs to. */
  readonly plugin: string;
  /** A seeded stream private to this plugin and this forward call (dropout masks, sampling). */
  readonly rng: Rng;
  /** This plugin's parameter or buffer `name` (without the prefix). */
  param(name: string): Variable;
  /** Per-forward scratch space private to this plugin (e.g. saliency kept from one block for the next). */
  readonly scratch: Map<string, unknown>;
  /** Adds `weight · value` to the training loss under `name` (logged by name). Only meaningful in training. */
  addLoss(name: string, value: Scalar, weight?: number): void;
}

/** Inputs of the attention core of one block, as the `attention` hook and its `next` receive them. */
export interface AttentionArgs {
  /** Index of the block (0-based). */
  readonly block: number;
  /** LayerNorm-1 output: `[B, N, D]`. */
  readonly input: Tensor3D;
  /** Per-head projections `[B, H, N, dh]` (from the fused qkv, q|k|v order). */
  readonly q: Tensor4D;
  /** Keys `[B, H, N, dh]`. */
  readonly k: Tensor4D;
  /** Values `[B, H, N, dh]`. */
  readonly v: Tensor4D;
  /** 1/√dh. */
  readonly scale: number;
  /** Where the image tokens and each prompt segment sit along the `N` axis. */
  readonly layout: TokenLayout;
}

/** What an attention core returns. */
export interface AttentionResult {
  /** Heads merged, before the output projection: `[B, N, D]`. */
  readonly output: Tensor3D;
  /** Pre-softmax scaled logits `[B, H, Nq, Nk]`; `Nq` may be the image tokens only (decoupled attention). */
  readonly logits: Tensor4D;
}

/**
 * An attention core: the standard joint softmax attention, or the next implementation in an `attention` hook
 * chain.
 */
export type AttentionFn = (args: AttentionArgs) => AttentionResult;

/** Where the logits passed to an `attnLogits` observer come from. */
export interface AttnLogitsInfo {
  /** Index of the block (0-based). */
  readonly block: number;
  /** Token layout of the block's input stream (rows and columns of the logits follow it). */
  readonly layout: TokenLayout;
}

/**
 * The hook sites along the ViT forward pass:
 * ```
 * patchEmbed ─▶ + cls, + pos ─▶ embed
 * for each block i: blockStart ─▶ LN1 ─▶ qkv ─▶ attention (attnLogits observers) ─▶ proj ─▶ attnOut
 *                   ─▶ +residual ─▶ LN2 ─▶ mlp [ fc1 ─▶ GELU ─▶ fc2 ] ─▶ +residual ─▶ blockEnd
 * final LN ─▶ CLS ─▶ head ─▶ auxLoss
 * ```
 * `patchEmbed` wraps the patch projection; `qkv`, `proj`, `fc1` and `fc2` wrap the four linear layers of a block (where LoRA-style updates belong); `mlp`
 * wraps the whole MLP, so its `next` runs `fc1` and `fc2` with their hooks.
 */
export interface PluginHooks {
  /**
   * Wraps the patch projection: flattened patches `[B, P, p·p·C]` (row-major pixels, channels last) → `[B, P, D]`,
   * before the CLS token and the position embedding are added.
   */
  patchEmbed?(ctx: HookContext, input: Tensor3D, next: (input: Tensor3D) => Tensor3D): Tensor3D;
  /** After patch embedding + CLS + position embedding: inject tokens. */
  embed?(ctx: HookContext, stream: TokenStream): TokenStream | undefined;
  /** Before block `block` reads the stream: insert, replace or drop prompt segments. */
  blockStart?(ctx: HookContext, stream: TokenStream, block: number): TokenStream | undefined;
  /** Wraps the fused qkv projection of LN1 output `[B, N, D]` → `[B, N, 3D]`. */
  qkv?(ctx: HookContext, input: Tensor3D, next: (input: Tensor3D) => Tensor3D, block: number): Tensor3D;
  /** Replaces the attention core (exclusive site). `next` is the standard joint softmax attention. */
  attention?(ctx: HookContext, args: AttentionArgs, next: AttentionFn): AttentionResult;
  /** Observes the attention logits of a block (saliency). Must not keep the tensor past the forward call. */
  attnLogits?(ctx: HookContext, logits: Tensor4D, info: AttnLogitsInfo): void;
  /** Wraps the attention output projection `[B, N, D]` → `[B, N, D]` (its input: the heads merged back). */
  proj?(ctx: HookContext, input: Tensor3D, next: (input: Tensor3D) => Tensor3D, block: number): Tensor3D;
  /** Transforms the attention branch after the output projection, before the residual add `[B, N, D]`. */
  attnOut?(ctx: HookContext, output: Tensor3D, block: number, layout: TokenLayout): Tensor3D;
  /** Wraps the MLP applied to LN2 output `[B, N, D]`. */
  mlp?(ctx: HookContext, input: Tensor3D, next: (input: Tensor3D) => Tensor3D, block: number): Tensor3D;
  /** Wraps the MLP's first linear layer `[B, N, D]` → `[B, N, H]` (before the GELU; H = `mlpHidden`). */
  fc1?(ctx: HookContext, input: Tensor3D, next: (input: Tensor3D) => Tensor3D, block: number): Tensor3D;
  /** Wraps the MLP's second linear layer `[B, N, H]` → `[B, N, D]` (its input: the GELU output). */
  fc2?(ctx: HookContext, input: Tensor3D, next: (input: Tensor3D) => Tensor3D, block: number): Tensor3D;
  /** After block `block` (residual adds done): carry, replace or read prompt outputs. */
  blockEnd?(ctx: HookContext, stream: TokenStream, block: number): TokenStream | undefined;
  /** Replaces the classifier on the final-normed CLS features `[B, D]` (exclusive site). */
  head?(ctx: HookContext, features: Tensor2D, next: (features: Tensor2D) => Tensor2D): Tensor2D;
  /** Last call of a forward: may add losses from what the plugin kept in `scratch`. */
  auxLoss?(ctx: HookContext, output: { logits: Tensor2D; tokens: TokenStream }): void;
}

/** Name of one hook site (a key of `PluginHooks`). */
export type HookName = keyof PluginHooks;
/**
 * Every hook site in forward order; a plugin with any other key in `hooks` is rejected as `PLUGIN_INVALID`.
 */
export const HOOK_NAMES: readonly HookName[] = [
  'patchEmbed',
  'embed',
  'blockStart',
  'qkv',
  'attention',
  'attnLogits',
  'proj',
  'attnOut',
  'mlp',
  'fc1',
  'fc2',
  'blockEnd',
  'head',
  'auxLoss',
];

/** Options of `SetupContext.addParameter`. */
export interface AddParameterOptions {
  /** Whether optimizers update it (default true). */
  trainable?: boolean;
  /** Parameter kind (default: `'bias'` for rank ≤ 1, `'weight'` otherwise). */
  kind?: ParameterKind;
  /**
   * Whether decoupled weight decay applies (default: true for `'weight'` tensors of rank ≥ 2, false
   * otherwise).
   */
  decay?: boolean;
}

/** What `setup` receives: the model config, a seeded stream and the registry, namespaced to the plugin. */
export interface SetupContext {
  /** Name of the plugin being set up (the registry owner of its tensors). */
  readonly plugin: string;
  /** The plugin's prefix; its tensors are registered as `<prefix>.<name>`. */
  readonly prefix: string;
  /** The model's config (with the model's own `numClasses`). */
  readonly config: VitConfig;
  /** Patch grid and token counts derived from `config`. */
  readonly geometry: VitGeometry;
  /** Seeded stream for this plugin's initialisation: `root.split('init').split(<prefix>)`. */
  readonly rng: Rng;
  /** Registers `<prefix>.<name>`, trainable unless stated; returns the variable. */
  addParameter(name: string, value: Tensor, options?: AddParameterOptions): Variable;
  /** Registers non-trainable plugin state `<prefix>.<name>` (saved with the adapter, not counted as a parameter). */
  addBuffer(name: string, value: Tensor): Variable;
  /** Changes trainability of any registered tensor (presets: linear probe, full fine-tuning, BitFit). */
  setTrainable(select: (entry: ParameterEntry) => boolean, trainable: boolean): number;
  /** Every registered tensor, backbone included (read-only view). */
  parameters(): readonly ParameterEntry[];
}

/** One batch of the training split, as `prepare` sees it. */
export interface PrepareBatch {
  /** Images `[B, H, W, C]`, preprocessed as the backbone expects them. */
  readonly images: Tensor4D;
  /** Class indices `[B]` (int32), when the data has labels. */
  readonly labels?: Tensor1D;
}

/** The frozen, prompt-free backbone's view of a batch. Tensors belong to the caller (dispose them). */
export interface FrozenFeatures {
  /** Residual-stream output of every block `[B, N_img, D]`. */
  readonly blockOutputs: Tensor3D[];
  /** Pre-softmax attention logits of every block `[B, H, N_img, N_img]`. */
  readonly attnLogits: Tensor4D[];
}

/** A value one plugin's `prepare` hands to later ones (e.g. hierarchy starts, a prototype bank). */
export type SharedValue = JsonValue | Tensor;

/**
 * What `prepare` receives: the setup context plus the frozen backbone, artifact recording and sharing between
 * plugins.
 */
export interface PrepareContext extends SetupContext {
  /** Runs the frozen backbone without any plugin. */
  frozenFeatures(images: Tensor4D): FrozenFeatures;
  /** Records a JSON artifact of this plugin (saved with the adapter: τ, hierarchy starts, token choice …). */
  setArtifact(key: string, value: JsonValue): void;
  /**
   * Publishes a value under `key` for plugins that prepare later (the model takes ownership of tensors and
   * disposes them when `prepare` ends; a consumer that needs a tensor afterwards copies it into a buffer).
   * This is how plugins cooperate without importing each other.
   */
  share(key: string, value: SharedValue): void;
  /** A value published by an earlier plugin's `prepare`, or undefined. */
  shared(key: string): SharedValue | undefined;
}

/** The training split as `prepare` sees it. */
export interface PrepareData {
  /** Number of images in the split. */
  readonly size: number;
  /** Batches in a fixed order; each call starts again from the first batch. */
  batches(): AsyncIterable<PrepareBatch>;
}

/**
 * A PEFT plugin: a plain, versioned object. Everything needed to rebuild it goes in `options` (JSON) and the
 * artifacts it records during `prepare`.
 */
export interface PeftPlugin {
  /** Unique within a model; appears in every error raised from its hooks. */
  readonly name: string;
  /**
   * Factory key used to rebuild the plugin from an adapter file (default: `name`). Set it when `name` can be
   * customised, so that `loadAdapter` finds the right factory.
   */
  readonly type?: string;
  /** The plugin's own version (semver). */
  readonly version: string;
  /** The hook API version it targets (`HOOK_SPEC_VERSION`). */
  readonly specVersion: number;
  /** Namespace of its tensors (`<prefix>.<name>`), unique within a model. */
  readonly prefix: string;
  /** Run tier (default `'normal'`); see `PluginTier` for the ordering rule. */
  readonly tier?: PluginTier;
  /** JSON options it was created with (written to adapter files). */
  readonly options?: JsonObject;
  /** Exclusive sites where this plugin's hook calls `next` and therefore composes with another override. */
  readonly composes?: readonly ExclusiveSite[];
  /**
   * For the plugin that owns the `attention` site: true when, in `block`, prompt rows of the attention output do
   * not depend on image rows. The backbone then runs image-independent prompt segments once at batch 1 (and a
   * prompt cache can reuse them across calls). Hooks at `qkv`, `proj`, `attnOut`, `mlp`, `fc1` and `fc2` must be
   * per-token maps for this to hold — which every hook in PEFT.js is, and third-party hooks must be.
   */
  isolatesPrompts?(block: number, config: VitConfig): boolean;
  /**
   * Creates the plugin's parameters and buffers; called once by `createPeftModel`, in run order. A
   * non-`PeftError` failure is reported as `HOOK_FAILED`.
   */
  setup?(ctx: SetupContext): void;
  /**
   * Optional data pass before training (`PeftModel.prepare`): reads the training split through the frozen
   * backbone and records artifacts. Failures are reported as `HOOK_FAILED`.
   */
  prepare?(ctx: PrepareContext, data: PrepareData): Promise<void>;
  /** Restores artifacts saved by `prepare` (adapter loading) instead of running `prepare` again. */
  restore?(ctx: SetupContext, artifacts: JsonObject): void;
  /** The hook functions, by site; omitted sites are not called. */
  readonly hooks: PluginHooks;
}
