import {
  type AttentionArgs,
  type AttentionResult,
  BACKBONE_OWNER,
  HEAD_OWNER,
  type PeftBackbone,
  PeftError,
  ParameterRegistry,
  Rng,
  type Seed,
  type Tensor,
  type Tensor1D,
  type Tensor2D,
  type Tensor3D,
  type Tensor4D,
  type TokenLayout,
  TokenStream,
  type VitConfig,
  type VitGeometry,
  requirePositiveInt,
  tf,
  vitGeometry,
} from '@peftjs/core';
import { gelu, layerNorm, linear, matMulT, mergeHeads, repeatBatch, softmax } from '@peftjs/core/ops';
import type { HostTensor } from '@peftjs/core/safetensors';
import {
  type BackboneForwardOptions,
  type BackboneOutput,
  type HookDriver,
  type PromptCache,
  createHookDriver,
  dropPathRateAt,
  validateVitConfig,
} from '@peftjs/core/backbone';
import {
  type ParameterSpec,
  timmInitialValues,
  toStorageLayout,
  toTorchLayout,
  vitParameterSpecs,
} from './parameters.js';

interface RowInputs {
  h: Tensor3D;
  q: Tensor4D;
  k: Tensor4D;
  v: Tensor4D;
}

interface BlockResult {
  stream: TokenStream;
  /** The block's `[B, N, D]` output when it was computed as one tensor. */
  output: Tensor3D | null;
  logits: Tensor4D;
}

/** Options of `VisionTransformer.create`. */
export interface CreateVitOptions {
  /** Seed of the random initialisation (timm's scheme). Default 0. */
  seed?: Seed;
}

/**
 * An ops-level Vision Transformer with timm semantics (pre-norm blocks, fused q|k|v projection with bias,
 * LayerNorm eps from the config, exact erf GELU, CLS token + learned position embedding, final norm, linear head
 * on the CLS token) that calls a hook driver at every site of its forward pass.
 *
 * Input images are NHWC `[B, H, W, C]`, already normalised.
 */
export class VisionTransformer implements PeftBackbone {
  /** Architecture and the class count of the current head. */
  readonly config: VitConfig;
  /** Patch grid, token counts and head width derived from `config`. */
  readonly geometry: VitGeometry;
  /**
   * Every weight by timm name: owner `'backbone'`, and `'head'` for `head.weight` `[D, C]` and `head.bias`
   * `[C]`.
   */
  readonly registry: ParameterRegistry;
  private headConfig: { numClasses: number };

  private constructor(config: VitConfig, registry: ParameterRegistry) {
    this.config = config;
    this.geometry = vitGeometry(config);
    this.registry = registry;
    this.headConfig = { numClasses: config.numClasses };
  }

  /** A randomly initialised ViT, initialised as timm does. */
  static create(config: VitConfig, options: CreateVitOptions = {}): VisionTransformer {
    validateVitConfig(config);
    const rng = new Rng(options.seed ?? 0).split('vit-init');
    const registry = new ParameterRegistry();
    for (const spec of vitParameterSpecs(config)) {
      registerSpec(registry, spec, tf.tensor(timmInitialValues(spec, config, rng), [...spec.torchShape]));
    }
    return new VisionTransformer(config, registry);
  }

  /**
   * Builds a ViT from tensors in timm naming and PyTorch layout (see `loadVit` for files). Every expected tensor
   * must be present with its exact shape; all problems are reported in one error. A state dict without `head.*`
   * gets a fresh head for `config.numClasses` classes.
   */
  static fromTorchTensors(
    tensors: ReadonlyMap<string, HostTensor>,
    config: VitConfig,
    options: { source?: string; seed?: Seed } = {},
  ): VisionTransformer {
    validateVitConfig(config);
    const hasHead = tensors.has('head.weight') || tensors.has('head.bias');
    const specs = vitParameterSpecs(config, { head: hasHead });
    const expected = new Set(specs.map((s) => s.name));
    const missing = specs.filter((s) => !tensors.has(s.name)).map((s) => s.name);
    const unexpected = [...tensors.keys()].filter((name) => !expected.has(name));
    const misshaped: string[] = [];
    for (const spec of specs) {
      const t = tensors.get(spec.name);
      if (t && !sameShape(t.shape, spec.torchShape)) {
        misshaped.push(`${spec.name} has shape [${t.shape}], expected [${spec.torchShape}]`);
      } else if (t && t.data.length !== t.shape.reduce((a, b) => a * b, 1)) {
        misshaped.push(`${spec.name} holds ${t.data.length} values for shape [${t.shape}]`);
      }
    }
    if (missing.length + unexpected.length + misshaped.length > 0) {
      const parts = [
        missing.length ? `missing ${missing.length}: ${missing.join(', ')}` : '',
        unexpected.length ? `unexpected ${unexpected.length}: ${unexpected.join(', ')}` : '',
        misshaped.length ? `wrong shape ${misshaped.length}: ${misshaped.join('; ')}` : '',
      ].filter(Boolean);
      throw new PeftError(
        'WEIGHTS_MISMATCH',
        `${options.source ?? 'state dict'} does not match the ViT config (dim ${config.dim}, depth ${config.depth}, ` +
          `patch ${config.patchSize}, image ${config.imageSize.join('×')}): ${parts.join(' | ')}`,
      );
    }
    const registry = new ParameterRegistry();
    for (const spec of specs) {
      const host = tensors.get(spec.name) as HostTensor;
      registerSpec(registry, spec, tf.tensor(host.data, [...spec.torchShape], 'float32'));
    }
    const vit = new VisionTransformer(config, registry);
    if (!hasHead) vit.resetHead(config.numClasses, new Rng(options.seed ?? 0).split('head'));
    return vit;
  }

  /** Number of classes of the current head. */
  get numClasses(): number {
    return this.headConfig.numClasses;
  }

  /** A fresh head for `numClasses` classes: trunc-normal(0.02) weight, zero bias (timm). */
  resetHead(numClasses: number, rng: Rng): void {
    requirePositiveInt('numClasses', numClasses);
    this.registry.dispose((e) => e.owner === HEAD_OWNER);
    const config = { ...this.config, numClasses };
    const specs = vitParameterSpecs(config).filter((s) => s.group === 'head');
    for (const spec of specs) {
      const data = new Float32Array(spec.torchShape.reduce((a, b) => a * b, 1));
      if (spec.name === 'head.weight') rng.fillTruncatedNormal(data, 0.02);
      registerSpec(this.registry, spec, tf.tensor(data, [...spec.torchShape]));
    }
    (this as { config: VitConfig }).config = config;
    this.headConfig = { numClasses };
  }

  /** The weights in timm naming and PyTorch layout (host copies), e.g. for writing a timm safetensors file. */
  toTorchTensors(): Map<string, HostTensor> {
    const out = new Map<string, HostTensor>();
    for (const spec of vitParameterSpecs(this.config)) {
      const torch = toTorchLayout(spec, this.registry.get(spec.name));
      out.set(spec.name, { shape: [...spec.torchShape], data: torch.dataSync() as Float32Array });
      torch.dispose();
    }
    return out;
  }

  /** The backbone's own weights, by name (what `forward` reads unless `options.weights` is given). */
  private readonly ownWeights: WeightLookup = (name) => this.registry.get(name);

  /** Patch embedding as one GEMM (through the `patchEmbed` hook): NHWC images → `[B, N, D]`. */
  private embedPatches(images: Tensor4D, driver: HookDriver, w: WeightLookup): Tensor3D {
    const [batch, height, width, channels] = images.shape;
    const { patchSize: p } = this.config;
    const [expectedH, expectedW] = this.config.imageSize;
    if (height !== expectedH || width !== expectedW || channels !== this.config.channels) {
      throw new PeftError(
        'SHAPE_MISMATCH',
        `images must be [B, ${expectedH}, ${expectedW}, ${this.config.channels}] (NHWC); got [${images.shape}]`,
      );
    }
    const { gridHeight: gh, gridWidth: gw, numPatches } = this.geometry;
    const rows = tf.reshape(images, [batch * gh, p, gw, p * channels]);
    const patches = tf.reshape(tf.transpose(rows, [0, 2, 1, 3]), [batch, numPatches, p * p * channels]);
    return driver.patchEmbed(
      patches as Tensor3D,
      (input) => linear(input, w('patch_embed.proj.weight'), w('patch_embed.proj.bias')) as Tensor3D,
    );
  }

  /** Standard joint softmax attention over all tokens. */
  static jointAttention(args: AttentionArgs): AttentionResult {
    const { q, k, v, scale } = args;
    // timm scales q before the product; matMulT picks flags or an explicit key transpose, whichever is fast here.
    const logits = matMulT<Tensor4D>(tf.mul(q, scale), k, false, true);
    const probs = softmax(logits);
    return { output: mergeHeads(tf.matMul(probs, v) as Tensor4D), logits };
  }

  /** Per-sample stochastic depth with 1/(1−p) rescaling; identity in eval mode or at rate 0. */
  private dropPath(
    x: Tensor3D,
    block: number,
    training: boolean,
    driver: HookDriver,
    branch: string,
  ): Tensor3D {
    const rate = dropPathRateAt(this.config, block);
    if (!training || rate === 0) return x;
    const keep = 1 - rate;
    const seed = driver.rng.split(`drop-path:${block}:${branch}`).tfSeed();
    const mask = tf.floor(tf.add(tf.randomUniform([x.shape[0], 1, 1], 0, 1, 'float32', seed), keep));
    return tf.mul(x, tf.div(mask, keep));
  }

  /** LayerNorm-1, the qkv projection (through its hook) and the head split, for any set of rows. */
  private attentionInputs(x: Tensor3D, block: number, driver: HookDriver, w: WeightLookup): RowInputs {
    const b = `blocks.${block}`;
    const h = layerNorm(
      x,
      w(`${b}.norm1.weight`) as Tensor1D,
      w(`${b}.norm1.bias`) as Tensor1D,
      this.config.layerNormEps,
    );
    const qkv = driver.qkv(
      h,
      block,
      (input) =>
        linear(
          input,
          w(`${b}.attn.qkv.weight`),
          this.config.qkvBias ? w(`${b}.attn.qkv.bias`) : undefined,
        ) as Tensor3D,
    );
    // [B, N, 3·D] → [B, 3·H, N, dh] in one (rank-4) transpose, then q, k and v are thirds of axis 1 with long
    // contiguous runs: one pass over the data instead of a strided split plus three head transposes.
    const [batch, tokens] = qkv.shape;
    const { heads } = this.config;
    const { headDim } = this.geometry;
    const perHead = tf.transpose(tf.reshape(qkv, [batch, tokens, 3 * heads, headDim]), [0, 2, 1, 3]);
    const [q, k, v] = tf.split(perHead, 3, 1) as [Tensor4D, Tensor4D, Tensor4D];
    return { h, q, k, v };
  }

  /** Output projection, attnOut hook, residual, LayerNorm-2, MLP, residual (every layer through its hook) — per token. */
  private finishBlock(
    x: Tensor3D,
    attended: Tensor3D,
    block: number,
    layout: TokenLayout,
    training: boolean,
    driver: HookDriver,
    w: WeightLookup,
  ): Tensor3D {
    const b = `blocks.${block}`;
    const projected = driver.proj(
      attended,
      block,
      (input) => linear(input, w(`${b}.attn.proj.weight`), w(`${b}.attn.proj.bias`)) as Tensor3D,
    );
    const attnBranch = driver.attnOut(projected, block, layout);
    const afterAttn = tf.add(x, this.dropPath(attnBranch, block, training, driver, 'attn')) as Tensor3D;
    const h2 = layerNorm(
      afterAttn,
      w(`${b}.norm2.weight`) as Tensor1D,
      w(`${b}.norm2.bias`) as Tensor1D,
      this.config.layerNormEps,
    );
    const mlpBranch = driver.mlp(h2, block, (input) => {
      const fc = (layer: 'fc1' | 'fc2') => (x: Tensor3D) =>
        linear(x, w(`${b}.mlp.${layer}.weight`), w(`${b}.mlp.${layer}.bias`)) as Tensor3D;
      const hidden = gelu(driver.fc1(input, block, fc('fc1')));
      return driver.fc2(hidden, block, fc('fc2'));
    });
    return tf.add(afterAttn, this.dropPath(mlpBranch, block, training, driver, 'mlp')) as Tensor3D;
  }

  /** One block over the whole stream as a single `[B, N, D]` sequence. */
  private jointBlock(
    stream: TokenStream,
    block: number,
    training: boolean,
    driver: HookDriver,
    w: WeightLookup,
  ): BlockResult {
    const layout = stream.layout();
    const x = stream.toTensor();
    const inputs = this.attentionInputs(x, block, driver, w);
    const attention = driver.attention(
      { block, input: inputs.h, q: inputs.q, k: inputs.k, v: inputs.v, scale: this.scale, layout },
      VisionTransformer.jointAttention,
    );
    const out = this.finishBlock(x, attention.output, block, layout, training, driver, w);
    return { stream: TokenStream.fromTensor(out, layout), output: out, logits: attention.logits };
  }

  /**
   * One block where attention keeps prompt rows isolated from image rows: image-independent segments (`[1, n, D]`)
   * are computed once at batch 1 (or taken from the prompt cache) and only their keys/values are broadcast to the
   * batch for the image rows' attention. Same result as `jointBlock`, a fraction of the work on prompt rows.
   */
  private isolatedBlock(
    stream: TokenStream,
    block: number,
    training: boolean,
    driver: HookDriver,
    w: WeightLookup,
    cache: PromptCache | undefined,
  ): BlockResult {
    const ordered = stream.independentLast();
    const layout = ordered.layout();
    const main = new TokenStream(
      ordered.image,
      ordered.segments.filter((s) => !s.independent),
    );
    const side = ordered.segments.filter((s) => s.independent);
    const batch = stream.batchSize;
    const dim = this.config.dim;
    const mainX = main.toTensor();
    const mainRows = mainX.shape[1];
    const sideRows = layout.total - mainRows;
    const sideX = tf.concat(
      side.map((s) => s.tokens),
      1,
    ) as Tensor3D;
    const cacheKey = `${block}|${side.map((s) => `${s.owner}/${s.key}:${s.tokens.shape[1]}`).join(',')}`;
    const cached = cache?.get(cacheKey);
    const sideInputs = cached
      ? { h: cached.h as Tensor3D, q: cached.q as Tensor4D, k: cached.k as Tensor4D, v: cached.v as Tensor4D }
      : this.attentionInputs(sideX, block, driver, w);
    const mainInputs = this.attentionInputs(mainX, block, driver, w);
    const widen = <T extends Tensor3D | Tensor4D>(m: T, s: T, axis: number): T =>
      tf.concat([m as tf.Tensor, repeatBatch(s as tf.Tensor, batch)], axis) as T;
    const attention = driver.attention(
      {
        block,
        input: widen(mainInputs.h, sideInputs.h, 1),
        q: widen(mainInputs.q, sideInputs.q, 2),
        k: widen(mainInputs.k, sideInputs.k, 2),
        v: widen(mainInputs.v, sideInputs.v, 2),
        scale: this.scale,
        layout,
      },
      VisionTransformer.jointAttention,
    );
    const mainOut = this.finishBlock(
      mainX,
      tf.slice(attention.output, [0, 0, 0], [batch, mainRows, dim]) as Tensor3D,
      block,
      main.layout(),
      training,
      driver,
      w,
    );
    let sideOut = cached?.out as Tensor3D | undefined;
    if (!sideOut) {
      // Prompt rows are identical across the batch here: read them from sample 0.
      const sideAttended = tf.slice(attention.output, [0, mainRows, 0], [1, sideRows, dim]) as Tensor3D;
      let start = 0;
      const sideLayout: TokenLayout = {
        numImageTokens: 0,
        numPromptTokens: sideRows,
        total: sideRows,
        segments: side.map((seg) => {
          const entry = {
            key: seg.key,
            owner: seg.owner,
            start,
            length: seg.tokens.shape[1],
            independent: true,
          };
          start += entry.length;
          return entry;
        }),
      };
      sideOut = this.finishBlock(sideX, sideAttended, block, sideLayout, training, driver, w);
      cache?.set(cacheKey, { ...sideInputs, out: sideOut });
    }
    const mainStream = TokenStream.fromTensor(mainOut, main.layout());
    let offset = 0;
    const sideSegments = side.map((s) => {
      const length = s.tokens.shape[1];
      const tokens = tf.slice(sideOut as Tensor3D, [0, offset, 0], [1, length, dim]) as Tensor3D;
      offset += length;
      return { key: s.key, owner: s.owner, tokens, independent: true };
    });
    // Back to the original segment order.
    const byKey = new Map([...mainStream.segments, ...sideSegments].map((s) => [s.key, s]));
    const next = new TokenStream(
      mainStream.image,
      stream.segments.map((s) => byKey.get(s.key) as (typeof sideSegments)[number]),
    );
    return { stream: next, output: null, logits: attention.logits };
  }

  private get scale(): number {
    return 1 / Math.sqrt(this.geometry.headDim);
  }

  /**
   * Runs the ViT on normalised images `[B, H, W, C]`, calling `options.driver` at every hook site. Throws
   * `SHAPE_MISMATCH` when the images do not match `config.imageSize` and `config.channels`. The caller owns
   * (and disposes) the outputs.
   */
  forward(images: Tensor4D, options: BackboneForwardOptions): BackboneOutput {
    const { driver, training } = options;
    const w = options.weights ?? this.ownWeights;
    const { depth, dim } = this.config;
    const batch = images.shape[0];
    const blockOutputs: Tensor3D[] = [];
    const attnLogits: Tensor4D[] = [];

    const patches = this.embedPatches(images, driver, w);
    const cls = repeatBatch(w('cls_token') as Tensor3D, batch);
    const embedded = tf.add(tf.concat([cls, patches], 1), w('pos_embed')) as Tensor3D;
    let stream = driver.embed(new TokenStream(embedded));

    for (let i = 0; i < depth; i++) {
      stream = driver.blockStart(stream, i);
      // Per-sample stochastic depth would differ between batch rows of one prompt, so it disables the shortcut.
      const isolated =
        stream.segments.some((s) => s.independent) &&
        driver.promptsIsolated(i) &&
        !(training && dropPathRateAt(this.config, i) > 0);
      const result = isolated
        ? this.isolatedBlock(stream, i, training, driver, w, training ? undefined : options.promptCache)
        : this.jointBlock(stream, i, training, driver, w);
      if (options.collect) {
        blockOutputs.push(result.output ?? result.stream.toTensor());
        attnLogits.push(result.logits);
      }
      stream = driver.blockEnd(result.stream, i);
    }

    // The final norm is per token, so norming the CLS token alone equals norming all tokens and taking token 0.
    const clsOut = tf.reshape(tf.slice(stream.image, [0, 0, 0], [batch, 1, dim]), [batch, dim]);
    const features = layerNorm(
      clsOut,
      w('norm.weight') as Tensor1D,
      w('norm.bias') as Tensor1D,
      this.config.layerNormEps,
    );
    const logits = driver.head(
      features as Tensor2D,
      (f) => linear(f, w('head.weight'), w('head.bias')) as Tensor2D,
    );
    return {
      logits,
      features: features as Tensor2D,
      tokens: stream,
      ...(options.collect ? { blockOutputs, attnLogits } : {}),
    };
  }

  /** Plain forward without plugins (eval mode unless `training`), returning class logits. */
  predict(images: Tensor4D, options: { training?: boolean; seed?: Seed } = {}): Tensor2D {
    return tf.tidy(() => {
      const training = options.training ?? false;
      const driver = this.bareDriver(images.shape[0], training, options.seed);
      return this.forward(images, { training, driver }).logits;
    });
  }

  /** Per-block outputs `[B, N, D]`, attention logits `[B, H, N, N]`, final CLS features and logits, without plugins. */
  forwardIntermediates(images: Tensor4D): {
    /** Class logits `[B, C]`. */
    logits: Tensor2D;
    /** Final-normed CLS features `[B, D]`. */
    features: Tensor2D;
    /** Every block's output `[B, N, D]` (before the final norm), one per block. */
    blockOutputs: Tensor3D[];
    /** Every block's pre-softmax attention logits `[B, H, N, N]`. */
    attnLogits: Tensor4D[];
  } {
    return tf.tidy(() => {
      const driver = this.bareDriver(images.shape[0], false);
      const out = this.forward(images, { training: false, driver, collect: true });
      return {
        logits: out.logits,
        features: out.features,
        blockOutputs: out.blockOutputs ?? [],
        attnLogits: out.attnLogits ?? [],
      };
    });
  }

  private bareDriver(batchSize: number, training: boolean, seed?: Seed): HookDriver {
    const info = { config: this.config, geometry: this.geometry, training, batchSize, epoch: 0 };
    return createHookDriver([], this.registry, info, new Rng(seed ?? 0));
  }

  /** Number of backbone parameters (everything but the head). */
  backboneParameterCount(): number {
    return this.registry.list((e) => e.owner === BACKBONE_OWNER).reduce((n, e) => n + e.variable.size, 0);
  }

  /** Disposes every weight, head included; the model is unusable afterwards. */
  dispose(): void {
    this.registry.dispose();
  }
}

/** Reads a weight by timm name (storage layout). */
type WeightLookup = (name: string) => Tensor;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function registerSpec(registry: ParameterRegistry, spec: ParameterSpec, torchTensor: Tensor): void {
  const stored = toStorageLayout(spec, torchTensor);
  torchTensor.dispose();
  registry.register(spec.name, stored, {
    owner: spec.group === 'head' ? HEAD_OWNER : BACKBONE_OWNER,
    kind: spec.torchShape.length <= 1 ? 'bias' : 'weight',
    // No decay on 1-D tensors (biases, norms) nor on the position/class embeddings, as timm's `no_weight_decay`.
    decay: spec.torchShape.length >= 2 && spec.name !== 'pos_embed' && spec.name !== 'cls_token',
  });
}
