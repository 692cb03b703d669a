import { type BackboneOutput, type NamedLoss, type PeftBackbone, PromptCache } from './backbone-api.js';
import { createHookDriver, resolvePluginOrder, sumLosses } from './driver.js';
import type { VitConfig } from './config.js';
import { PeftError, requirePositiveInt } from './errors.js';
import { softmaxCrossEntropy } from './ops.js';
import type {
  FrozenFeatures,
  JsonObject,
  JsonValue,
  PeftPlugin,
  PrepareContext,
  PrepareData,
  SetupContext,
  SharedValue,
} from './plugin.js';
import { Rng, type Seed } from './random.js';
import { BACKBONE_OWNER, HEAD_OWNER, ParameterRegistry, type ParameterReport } from './registry.js';
import { tf } from './tf.js';
import type { Scalar, Tensor1D, Tensor2D, Tensor3D, Tensor4D, Variable } from './tf.js';

/** Options of `createPeftModel`. */
export interface CreatePeftModelOptions {
  /** Root seed of the model: plugin initialisation and per-forward randomness derive from it. Default 0. */
  seed?: Seed;
  /** Replace the backbone's head with a fresh one for this many classes (timm init). */
  numClasses?: number;
  /** Train the classification head (default true, as every PEFT method does). */
  trainHead?: boolean;
}

/** Options of `PeftModel.forward`, `loss`, `lossAndGradients` and `forwardIntermediates`. */
export interface ForwardOptions {
  /** Training mode: stochastic depth and plugin dropout active, auxiliary losses computed. Default false. */
  training?: boolean;
  /** Current training epoch, visible to hooks (loss warm-ups). Default 0. */
  epoch?: number;
}

/** What `PeftModel.forward` returns; the caller owns (and disposes) every tensor. */
export interface PeftForwardOutput {
  /** Class logits `[B, C]`. */
  readonly logits: Tensor2D;
  /** Auxiliary losses the plugins added during this forward (unweighted values, with their weights). */
  readonly losses: readonly NamedLoss[];
}

/** What `PeftModel.loss` returns; the caller owns (and disposes) every tensor. */
export interface LossOutput {
  /** Cross-entropy + Σ weight·auxiliary loss. */
  readonly total: Scalar;
  /** `ce` and every auxiliary loss by name (unweighted), for logging. */
  readonly parts: Readonly<Record<string, Scalar>>;
}

/** What `PeftModel.forwardIntermediates` returns (plugins included); the caller owns every tensor. */
export interface Intermediates extends FrozenFeatures {
  /** Class logits `[B, C]`. */
  readonly logits: Tensor2D;
  /** Final-normed CLS features `[B, D]` (the head's input). */
  readonly features: Tensor2D;
}

/**
 * A backbone with plugins attached. Built once by `createPeftModel`: the plugin order is resolved, every plugin's
 * parameters are created, and the plugin list is frozen.
 */
export class PeftModel {
  /** The backbone it runs; its frozen weights are shared, not copied. */
  readonly backbone: PeftBackbone;
  /** Plugins in resolved run order. */
  readonly plugins: readonly PeftPlugin[];
  /**
   * Every tensor of the model: adopted backbone weights, this model's own head and the plugins' parameters
   * and buffers.
   */
  readonly registry: ParameterRegistry;
  /**
   * Root generator (seeded by `CreatePeftModelOptions.seed`): plugin init, per-forward and head streams split
   * from it.
   */
  readonly rng: Rng;
  private readonly artifactStore = new Map<string, JsonObject>();
  private trainingForwards = 0;
  private promptCache: PromptCache | null = null;

  /** @internal use `createPeftModel`. */
  constructor(backbone: PeftBackbone, plugins: readonly PeftPlugin[], registry: ParameterRegistry, rng: Rng) {
    this.backbone = backbone;
    this.plugins = Object.freeze([...plugins]);
    this.registry = registry;
    this.rng = rng;
  }

  /** The backbone's config with this model's class count (each model owns its head). */
  get config(): VitConfig {
    if (!this.registry.has('head.bias')) return this.backbone.config;
    const numClasses = this.registry.get('head.bias').shape[0] as number;
    return numClasses === this.backbone.config.numClasses
      ? this.backbone.config
      : { ...this.backbone.config, numClasses };
  }

  /** Where the backbone reads its weights in this model's forwards: the model's own copies first. */
  private readonly weights = (name: string): Variable => this.registry.get(name);

  /**
   * Gives this model its own copy of backbone tensor `name` (copy-on-write: the backbone's weights are shared by
   * every model built on them and never change) and returns it; `owner` is the plugin the copy is kept for (its
   * adapter files store it). Already-owned copies are returned as they are. Used by `SetupContext.setTrainable`
   * and by plugins that rewrite weights, such as LoRA's merge.
   */
  ownBaseTensor(name: string, owner: string): Variable {
    const entry = this.registry.entry(name);
    if (entry.owner !== BACKBONE_OWNER) {
      throw new PeftError('PARAMETER_INVALID', `"${name}" is not a backbone tensor`);
    }
    if (!this.plugins.some((p) => p.name === owner)) {
      throw new PeftError('PARAMETER_INVALID', `no plugin named "${owner}" in this model`);
    }
    const variable = this.registry.copyOnWrite(name, owner);
    this.promptCache?.clear();
    return variable;
  }

  /** Drops this model's copy of backbone tensor `name` (see `ownBaseTensor`) and reads the shared one again. */
  releaseBaseTensor(name: string): void {
    this.registry.restoreShared(this.backbone.registry.entry(name));
    this.promptCache?.clear();
  }

  /** Always throws: the plugin list is fixed when the model is built. */
  addPlugin(plugin: PeftPlugin): never {
    throw new PeftError(
      'MODEL_FROZEN',
      `cannot add plugin "${plugin?.name}" after the model was built; pass every plugin to createPeftModel`,
    );
  }

  /** Number of training forwards so far (part of the resumable state: it seeds per-forward randomness). */
  get forwardCounter(): number {
    return this.trainingForwards;
  }

  /** Restores the counter (resuming a run); throws `INVALID_OPTION` unless it is a non-negative integer. */
  set forwardCounter(value: number) {
    this.trainingForwards = requirePositiveIntOrZero('forwardCounter', value);
  }

  private run(
    images: Tensor4D,
    training: boolean,
    collect: boolean,
    epoch = 0,
  ): { out: BackboneOutput; losses: NamedLoss[] } {
    if (images.rank !== 4) {
      throw new PeftError('SHAPE_MISMATCH', `images must be [B, H, W, C]; got [${images.shape}]`);
    }
    // Training changes parameters, so cached prompt rows would go stale.
    if (training) this.promptCache?.clear();
    const rng = training ? this.rng.split(`forward:${this.trainingForwards++}`) : this.rng.split('eval');
    const info = {
      config: this.config,
      geometry: this.backbone.geometry,
      training,
      batchSize: images.shape[0],
      epoch,
    };
    const driver = createHookDriver(this.plugins, this.registry, info, rng);
    const out = this.backbone.forward(images, {
      training,
      driver,
      collect,
      weights: this.weights,
      ...(this.promptCache && !training ? { promptCache: this.promptCache } : {}),
    });
    driver.auxLoss({ logits: out.logits, tokens: out.tokens });
    return { out, losses: [...driver.losses] };
  }

  /** Class logits and the auxiliary losses plugins added. Wrap in `tf.tidy` or dispose the results. */
  forward(images: Tensor4D, options: ForwardOptions = {}): PeftForwardOutput {
    const training = options.training ?? false;
    const meta: Omit<NamedLoss, 'value'>[] = [];
    // tidy keeps only returned tensors: return the loss values and rebuild their records afterwards.
    const result = tf.tidy(() => {
      const { out, losses } = this.run(images, training, false, options.epoch);
      for (const { name, plugin, weight } of losses) meta.push({ name, plugin, weight });
      return { logits: out.logits, values: losses.map((l) => l.value) };
    });
    return {
      logits: result.logits,
      losses: result.values.map((value, i) => ({ ...(meta[i] as Omit<NamedLoss, 'value'>), value })),
    };
  }

  /** Evaluation-mode logits. */
  predict(images: Tensor4D): Tensor2D {
    return tf.tidy(() => this.run(images, false, false).out.logits);
  }

  /** Training loss: cross-entropy plus every plugin's weighted auxiliary loss, with the parts named. */
  loss(images: Tensor4D, labels: Tensor1D, options: ForwardOptions = {}): LossOutput {
    const training = options.training ?? true;
    const names: string[] = [];
    const tensors = tf.tidy(() => {
      const { out, losses } = this.run(images, training, false, options.epoch);
      const ce = softmaxCrossEntropy(out.logits, labels);
      const total = tf.add(ce, sumLosses(losses)) as Scalar;
      const parts: Scalar[] = [ce];
      names.push('ce');
      for (const l of losses) {
        names.push(l.name);
        parts.push(l.value);
      }
      return [total, ...parts];
    });
    const [total, ...parts] = tensors as Scalar[];
    return {
      total: total as Scalar,
      parts: Object.fromEntries(parts.map((p, i) => [names[i] as string, p])),
    };
  }

  /**
   * Gradients of the training loss for exactly the trainable tensors, by parameter name, plus the loss parts.
   * The caller owns (and disposes) every returned tensor.
   */
  lossAndGradients(
    images: Tensor4D,
    labels: Tensor1D,
    options: ForwardOptions = {},
  ): {
    /** Total training loss (cross-entropy + weighted auxiliary losses). */
    loss: Scalar;
    /** `ce` and every auxiliary loss by name, unweighted, read back as numbers. */
    parts: Record<string, number>;
    /** Gradient of `loss` for every trainable tensor, keyed by parameter name. */
    grads: Record<string, tf.Tensor>;
  } {
    // A variable carries one trainable flag; set it from this model's registry (own variables only: shared backbone
    // weights are never trainable) before differentiating.
    for (const entry of this.registry.list((e) => !e.shared)) entry.variable.trainable = entry.trainable;
    const entries = this.registry.trainableEntries();
    if (entries.length === 0)
      throw new PeftError('PARAMETER_INVALID', 'the model has no trainable parameters');
    const partValues: Record<string, Scalar> = {};
    const { value, grads } = tf.variableGrads(
      () => {
        const out = this.loss(images, labels, options);
        for (const [k, v] of Object.entries(out.parts)) partValues[k] = tf.keep(v);
        return out.total;
      },
      entries.map((e) => e.variable),
    );
    const byName: Record<string, tf.Tensor> = {};
    const byId = new Map(entries.map((e) => [e.variable.name, e.name]));
    for (const [id, g] of Object.entries(grads)) byName[byId.get(id) ?? id] = g;
    const parts: Record<string, number> = {};
    for (const [k, v] of Object.entries(partValues)) {
      parts[k] = v.dataSync()[0] as number;
      v.dispose();
    }
    return { loss: value, parts, grads: byName };
  }

  /**
   * Inference prompt cache: with decoupled attention, prompts that depend only on parameters (SHIP's SIP and SSP,
   * VPT prompts) never read the image before the last block, so their per-block keys/values are computed on the
   * first evaluation call and reused by every later one; only image-dependent prompts (SHIP's AP) are computed per
   * image. Results are unchanged. Training forwards and `applyGradients` clear it; call `clearPromptCache()` after
   * changing parameters any other way.
   */
  enablePromptCache(): void {
    this.promptCache ??= new PromptCache();
  }

  /** Empties the prompt cache (keeps it enabled); call after changing parameters outside `applyGradients`. */
  clearPromptCache(): void {
    this.promptCache?.clear();
  }

  /** Empties and turns off the prompt cache: every evaluation call recomputes the prompt rows. */
  disablePromptCache(): void {
    this.promptCache?.clear();
    this.promptCache = null;
  }

  /** Number of cached block entries (0 when disabled or empty). */
  get promptCacheSize(): number {
    return this.promptCache?.size ?? 0;
  }

  /**
   * Applies gradients keyed by parameter name (as `lossAndGradients` returns them) with a tfjs optimizer.
   * The gradients stay owned by the caller.
   */
  applyGradients(optimizer: tf.Optimizer, grads: Readonly<Record<string, tf.Tensor>>): void {
    const byVariable: Record<string, tf.Tensor> = {};
    for (const [name, grad] of Object.entries(grads)) byVariable[this.registry.get(name).name] = grad;
    optimizer.applyGradients(byVariable as Parameters<tf.Optimizer['applyGradients']>[0]);
    this.promptCache?.clear();
  }

  /** Per-block outputs and attention logits of this model (plugins included), for analysis. */
  forwardIntermediates(images: Tensor4D, options: ForwardOptions = {}): Intermediates {
    return tf.tidy(() => {
      const { out } = this.run(images, options.training ?? false, true, options.epoch);
      return {
        logits: out.logits,
        features: out.features,
        blockOutputs: out.blockOutputs ?? [],
        attnLogits: out.attnLogits ?? [],
      };
    });
  }

  /**
   * The frozen, prompt-free backbone (no plugin runs), eval mode: the backbone's own (pristine) weights, never this
   * model's trained copies.
   */
  frozenFeatures(images: Tensor4D): FrozenFeatures {
    return tf.tidy(() => {
      const info = {
        config: this.config,
        geometry: this.backbone.geometry,
        training: false,
        batchSize: images.shape[0],
        epoch: 0,
      };
      const driver = createHookDriver([], this.registry, info, this.rng.split('frozen'));
      const out = this.backbone.forward(images, {
        training: false,
        driver,
        collect: true,
      });
      return { blockOutputs: (out.blockOutputs ?? []) as Tensor3D[], attnLogits: out.attnLogits ?? [] };
    });
  }

  /** Runs every plugin's `prepare` step (in order) over the training data seen through the frozen backbone. */
  async prepare(data: PrepareData): Promise<void> {
    const sharedStore = new Map<string, SharedValue>();
    try {
      await this.prepareEach(data, sharedStore);
    } finally {
      for (const value of sharedStore.values()) if (value instanceof tf.Tensor) value.dispose();
    }
  }

  private async prepareEach(data: PrepareData, sharedStore: Map<string, SharedValue>): Promise<void> {
    for (const plugin of this.plugins) {
      if (!plugin.prepare) continue;
      const ctx: PrepareContext = {
        ...setupContext(this, plugin),
        frozenFeatures: (images) => this.frozenFeatures(images),
        setArtifact: (key: string, value: JsonValue) => {
          const store = this.artifactStore.get(plugin.name) ?? {};
          store[key] = value;
          this.artifactStore.set(plugin.name, store);
        },
        share: (key: string, value: SharedValue) => {
          const previous = sharedStore.get(key);
          if (previous instanceof tf.Tensor && previous !== value) previous.dispose();
          sharedStore.set(key, value instanceof tf.Tensor ? tf.keep(value) : value);
        },
        shared: (key: string) => sharedStore.get(key),
      };
      try {
        await plugin.prepare(ctx, data);
      } catch (error) {
        if (error instanceof PeftError && error.code === 'HOOK_FAILED') throw error;
        throw new PeftError(
          'HOOK_FAILED',
          `plugin "${plugin.name}" failed in prepare: ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        );
      }
    }
  }

  /** Restores artifacts (from an adapter file) through each plugin's `restore`. */
  restoreArtifacts(artifacts: Readonly<Record<string, JsonObject>>): void {
    for (const plugin of this.plugins) {
      const saved = artifacts[plugin.name];
      if (!saved || Object.keys(saved).length === 0) continue;
      if (!plugin.restore) {
        throw new PeftError('PLUGIN_INVALID', `plugin "${plugin.name}" has saved artifacts but no restore()`);
      }
      plugin.restore(setupContext(this, plugin), saved);
      this.artifactStore.set(plugin.name, structuredClone(saved));
    }
  }

  /** JSON artifacts recorded by plugins during `prepare` (or restored). */
  artifacts(): Record<string, JsonObject> {
    return Object.fromEntries([...this.artifactStore].map(([k, v]) => [k, structuredClone(v)]));
  }

  /** The variables an optimizer should update (trainable registry entries, in registration order). */
  trainableVariables(): Variable[] {
    return this.registry.trainableVariables();
  }

  /** Parameter counts by trainability and owner (see `ParameterReport` for the convention). */
  parameterReport(): ParameterReport {
    return this.registry.report();
  }

  /**
   * Disposes what the model owns: plugin tensors, its head and its copies of backbone tensors. The backbone's own
   * weights are shared and stay untouched (other models and later ones see them exactly as loaded).
   */
  dispose(): void {
    this.disablePromptCache();
    this.registry.dispose();
  }
}

function requirePositiveIntOrZero(option: string, value: number): number {
  return value === 0 ? 0 : requirePositiveInt(option, value);
}

function setupContext(model: PeftModel, plugin: PeftPlugin): SetupContext {
  const registry = model.registry;
  return {
    plugin: plugin.name,
    prefix: plugin.prefix,
    config: model.config,
    geometry: model.backbone.geometry,
    rng: model.rng.split('init').split(plugin.prefix),
    addParameter(name, value, options = {}) {
      return registry.register(`${plugin.prefix}.${name}`, value, {
        owner: plugin.name,
        ...(options.kind !== undefined ? { kind: options.kind } : {}),
        ...(options.trainable !== undefined ? { trainable: options.trainable } : {}),
        ...(options.decay !== undefined ? { decay: options.decay } : {}),
      });
    },
    addBuffer(name, value) {
      const full = `${plugin.prefix}.${name}`;
      if (registry.has(full) && registry.entry(full).kind === 'buffer') {
        registry.entry(full).variable.assign(value);
        value.dispose();
        return registry.get(full);
      }
      return registry.register(full, value, { owner: plugin.name, kind: 'buffer', trainable: false });
    },
    setTrainable: (select, trainable) =>
      registry.setTrainable(select, trainable, (entry) => model.ownBaseTensor(entry.name, plugin.name)),
    parameters: () => registry.list(),
  };
}

/**
 * Attaches plugins to a backbone. The run order is resolved once (tiers `pre` → `normal` → `post`, then list
 * order), each plugin's `setup` creates its parameters, and the plugin list is frozen. Backbone weights are frozen
 * and the head is trainable unless a plugin changes that in `setup`.
 */
export function createPeftModel(
  backbone: PeftBackbone,
  plugins: readonly PeftPlugin[],
  options: CreatePeftModelOptions = {},
): PeftModel {
  const ordered = resolvePluginOrder(plugins);
  const rng = new Rng(options.seed ?? 0);
  const registry = new ParameterRegistry();
  const trainHead = options.trainHead ?? true;
  // The backbone's weights are shared, read-only: a plugin that trains one gets a model-owned copy (copy-on-write).
  for (const entry of backbone.registry.list((e) => e.owner !== HEAD_OWNER)) registry.adopt(entry);
  // Each model owns its head, so several models can share one frozen backbone: a fresh timm-initialised head
  // when `numClasses` is given, otherwise a copy of the backbone's.
  const dim = backbone.config.dim;
  if (options.numClasses !== undefined) {
    requirePositiveInt('numClasses', options.numClasses);
    const weight = rng.split('head').fillTruncatedNormal(new Float32Array(dim * options.numClasses), 0.02);
    registry.register('head.weight', tf.tensor2d(weight, [dim, options.numClasses]), {
      owner: HEAD_OWNER,
      trainable: trainHead,
    });
    registry.register('head.bias', tf.zeros([options.numClasses]), {
      owner: HEAD_OWNER,
      trainable: trainHead,
    });
  } else if (backbone.registry.has('head.weight')) {
    for (const name of ['head.weight', 'head.bias']) {
      registry.register(name, tf.clone(backbone.registry.get(name)), {
        owner: HEAD_OWNER,
        trainable: trainHead,
      });
    }
  }
  const model = new PeftModel(backbone, ordered, registry, rng);
  for (const plugin of ordered) {
    if (!plugin.setup) continue;
    try {
      plugin.setup(setupContext(model, plugin));
    } catch (error) {
      model.dispose();
      if (error instanceof PeftError) throw error;
      throw new PeftError(
        'HOOK_FAILED',
        `plugin "${plugin.name}" failed in setup: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
  }
  return model;
}
