import {
  invalidOption,
  type ParameterEntry,
  PeftError,
  type PeftModel,
  requireNumberInRange,
  tf,
} from '@peftjs/core';
import type { Tensor } from '@peftjs/core';
import type { HostTensor } from '@peftjs/core/safetensors';

/** Every optimizer `train` can create: `adamw` (`AdamW`) and `sgd` (`Sgd`). */
export const OPTIMIZER_KINDS = ['adamw', 'sgd'] as const;
/** Which optimizer: one of `OPTIMIZER_KINDS`. */
export type OptimizerKind = (typeof OPTIMIZER_KINDS)[number];

/** Everything an optimizer needs to continue exactly where it stopped; tensors are host copies. */
export interface OptimizerState {
  /** The optimizer that produced the state; `loadState` of another kind throws `INVALID_OPTION`. */
  readonly kind: OptimizerKind;
  /** Number of `step` calls. */
  readonly step: number;
  /** Updates per parameter (PyTorch counts per parameter; a parameter without a gradient is not updated). */
  readonly paramSteps: Readonly<Record<string, number>>;
  /** Moment buffers: `m/<param>` and `v/<param>` (AdamW) or `momentum/<param>` (SGD). */
  readonly tensors: Readonly<Record<string, HostTensor>>;
}

/**
 * A hand-written optimizer over a `PeftModel`'s named trainable parameters (tfjs optimizers have no decoupled
 * weight decay and no inspectable state). Gradients stay owned by the caller.
 */
export interface Optimizer {
  /** Which algorithm this is. */
  readonly kind: OptimizerKind;
  /** Default learning rate, used when `step` gets none. */
  readonly lr: number;
  /**
   * Updates every parameter named in `grads` (keyed by registry name, as `PeftModel.lossAndGradients` returns
   * them) at rate `lr`, then clears the model's prompt cache. A gradient for a frozen parameter throws
   * `PARAMETER_INVALID`; one whose size differs from its parameter throws `SHAPE_MISMATCH`.
   */
  step(model: PeftModel, grads: Readonly<Record<string, Tensor>>, lr?: number): void;
  /** A host copy of the step counts and moment buffers (for checkpoints). */
  state(): OptimizerState;
  /**
   * Replaces the current state with `state` (copied). Throws `INVALID_OPTION` for another optimizer's state
   * and `WEIGHTS_MISMATCH` for an unknown buffer key.
   */
  loadState(state: OptimizerState): void;
  /** Frees the moment buffers. */
  dispose(): void;
}

/** Chooses which parameters get weight decay; the default reads the registry's `decay` flag. */
export type DecayFilter = (entry: ParameterEntry) => boolean;

const registryDecay: DecayFilter = (entry) => entry.decay;

/** Options of `AdamW`; invalid values throw `INVALID_OPTION`. */
export interface AdamWOptions {
  /** Default learning rate (≥ 0; default 1e-3). */
  lr?: number;
  /** β₁ and β₂, each in [0, 1) (default [0.9, 0.999]). */
  betas?: readonly [number, number];
  /** ε added to the denominator (≥ 0; default 1e-8). */
  eps?: number;
  /** Decoupled weight decay factor (≥ 0; default 0). */
  weightDecay?: number;
  /** Which parameters decay (default: the registry's `decay` flag). */
  decayFilter?: DecayFilter;
}

/** Options of `Sgd`; invalid values throw `INVALID_OPTION`. */
export interface SgdOptions {
  /** Default learning rate (≥ 0; default 1e-2). */
  lr?: number;
  /** Momentum factor μ in [0, 1] (default 0: no momentum buffer). */
  momentum?: number;
  /** Dampening of the momentum update, in [0, 1] (default 0). */
  dampening?: number;
  /** Nesterov momentum (default false); requires momentum > 0 and dampening 0. */
  nesterov?: boolean;
  /** Coupled L2 factor added to the gradient (≥ 0; default 0). */
  weightDecay?: number;
  /** Which parameters decay (default: the registry's `decay` flag). */
  decayFilter?: DecayFilter;
}

function requireNonNegative(option: string, value: number): number {
  return requireNumberInRange(option, value, 0, Number.MAX_VALUE);
}

/** Moment buffers by key, with host snapshots for checkpoints. */
abstract class BufferedOptimizer implements Optimizer {
  abstract readonly kind: OptimizerKind;
  readonly lr: number;
  /** Moment buffers by key (`m/<param>`, `v/<param>` or `momentum/<param>`). */
  protected readonly buffers = new Map<string, Tensor>();
  /** Updates applied so far, per parameter name (Adam's bias-correction step `t`). */
  protected readonly paramSteps = new Map<string, number>();
  /** Number of `step` calls. */
  protected steps = 0;

  constructor(lr: number) {
    this.lr = requireNonNegative('lr', lr);
  }

  step(model: PeftModel, grads: Readonly<Record<string, Tensor>>, lr = this.lr): void {
    requireNonNegative('lr', lr);
    for (const [name, grad] of Object.entries(grads)) {
      const entry = model.registry.entry(name);
      if (!entry.trainable) {
        throw new PeftError('PARAMETER_INVALID', `got a gradient for the frozen parameter "${name}"`);
      }
      if (grad.size !== entry.variable.size) {
        throw new PeftError(
          'SHAPE_MISMATCH',
          `gradient of "${name}" has shape [${grad.shape}] but the parameter has [${entry.variable.shape}]`,
        );
      }
      const t = (this.paramSteps.get(name) ?? 0) + 1;
      const kept = tf.tidy(() => this.update(entry, grad, lr, t));
      for (const [key, value] of Object.entries(kept)) {
        this.buffers.get(key)?.dispose();
        this.buffers.set(key, value);
      }
      this.paramSteps.set(name, t);
    }
    this.steps++;
    // Cached prompt rows were computed from the old parameters.
    model.clearPromptCache();
  }

  /** Assigns the new parameter value and returns the new buffers by key (inside a tidy). */
  protected abstract update(
    entry: ParameterEntry,
    grad: Tensor,
    lr: number,
    t: number,
  ): Record<string, Tensor>;

  /** Key prefixes of this optimizer's buffers; `loadState` rejects any other key. */
  protected abstract bufferPrefixes(): readonly string[];

  state(): OptimizerState {
    const tensors: Record<string, HostTensor> = {};
    for (const [key, value] of this.buffers) {
      // dataSync may hand out the backend's own storage; copy it.
      tensors[key] = { shape: [...value.shape], data: (value.dataSync() as Float32Array).slice() };
    }
    return {
      kind: this.kind,
      step: this.steps,
      paramSteps: Object.fromEntries(this.paramSteps),
      tensors,
    };
  }

  loadState(state: OptimizerState): void {
    if (state.kind !== this.kind) {
      invalidOption('optimizer', state.kind, `"${this.kind}" (the state was saved by another optimizer)`);
    }
    const prefixes = this.bufferPrefixes();
    for (const key of Object.keys(state.tensors)) {
      if (!prefixes.some((p) => key.startsWith(p))) {
        throw new PeftError(
          'WEIGHTS_MISMATCH',
          `${this.kind} optimizer state has an unknown tensor "${key}"`,
        );
      }
    }
    this.dispose();
    for (const [key, host] of Object.entries(state.tensors)) {
      this.buffers.set(key, tf.tensor(host.data.slice(), host.shape, 'float32'));
    }
    for (const [name, t] of Object.entries(state.paramSteps)) this.paramSteps.set(name, t);
    this.steps = state.step;
  }

  dispose(): void {
    for (const value of this.buffers.values()) value.dispose();
    this.buffers.clear();
    this.paramSteps.clear();
    this.steps = 0;
  }
}

/**
 * AdamW as `torch.optim.AdamW` (which timm uses): decoupled decay p ← p·(1 − lr·wd) on parameters the decay filter
 * selects, then the bias-corrected Adam update p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
 */
export class AdamW extends BufferedOptimizer {
  /** Always `adamw`. */
  readonly kind = 'adamw' as const;
  /** β₁ and β₂. */
  readonly betas: readonly [number, number];
  /** ε added to the denominator. */
  readonly eps: number;
  /** Decoupled weight decay factor. */
  readonly weightDecay: number;
  private readonly decayFilter: DecayFilter;

  constructor(options: AdamWOptions = {}) {
    super(options.lr ?? 1e-3);
    const [b1, b2] = options.betas ?? [0.9, 0.999];
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) {
      invalidOption('betas', options.betas, 'two numbers in [0, 1)');
    }
    this.betas = [b1, b2];
    this.eps = requireNonNegative('eps', options.eps ?? 1e-8);
    this.weightDecay = requireNonNegative('weightDecay', options.weightDecay ?? 0);
    this.decayFilter = options.decayFilter ?? registryDecay;
  }

  /** `m/` (first moments) and `v/` (second moments). */
  protected bufferPrefixes(): readonly string[] {
    return ['m/', 'v/'];
  }

  protected update(entry: ParameterEntry, grad: Tensor, lr: number, t: number): Record<string, Tensor> {
    const [b1, b2] = this.betas;
    const p0 = entry.variable;
    const m0 = this.buffers.get(`m/${entry.name}`) ?? tf.zerosLike(grad);
    const v0 = this.buffers.get(`v/${entry.name}`) ?? tf.zerosLike(grad);
    const decayed =
      this.weightDecay !== 0 && this.decayFilter(entry) ? tf.mul(p0, 1 - lr * this.weightDecay) : p0;
    // Same operation order as PyTorch: m.lerp_(g, 1 − β₁); v.mul_(β₂).addcmul_(g, g, 1 − β₂).
    const m = tf.add(m0, tf.mul(tf.sub(grad, m0), 1 - b1));
    const v = tf.add(tf.mul(v0, b2), tf.mul(tf.mul(grad, grad), 1 - b2));
    const stepSize = lr / (1 - b1 ** t);
    const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(1 - b2 ** t)), this.eps);
    p0.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), stepSize)).reshape(p0.shape));
    return { [`m/${entry.name}`]: m, [`v/${entry.name}`]: v };
  }
}

/**
 * SGD as `torch.optim.SGD`: g ← g + wd·p (coupled L2, only on parameters the decay filter selects), momentum buffer
 * b ← g at the first update and b ← μ·b + (1 − dampening)·g after, g ← g + μ·b (Nesterov) or b, then p ← p − lr·g.
 */
export class Sgd extends BufferedOptimizer {
  /** Always `sgd`. */
  readonly kind = 'sgd' as const;
  /** Momentum factor μ (0: no momentum buffer). */
  readonly momentum: number;
  /** Dampening of the momentum update. */
  readonly dampening: number;
  /** Whether the update uses Nesterov momentum. */
  readonly nesterov: boolean;
  /** Coupled L2 factor added to the gradient. */
  readonly weightDecay: number;
  private readonly decayFilter: DecayFilter;

  constructor(options: SgdOptions = {}) {
    super(options.lr ?? 1e-2);
    this.momentum = requireNumberInRange('momentum', options.momentum ?? 0, 0, 1);
    this.dampening = requireNumberInRange('dampening', options.dampening ?? 0, 0, 1);
    this.nesterov = options.nesterov ?? false;
    if (this.nesterov && (this.momentum === 0 || this.dampening !== 0)) {
      invalidOption('nesterov', true, 'used with momentum > 0 and dampening 0 (as in PyTorch)');
    }
    this.weightDecay = requireNonNegative('weightDecay', options.weightDecay ?? 0);
    this.decayFilter = options.decayFilter ?? registryDecay;
  }

  /** `momentum/` (momentum buffers). */
  protected bufferPrefixes(): readonly string[] {
    return ['momentum/'];
  }

  protected update(entry: ParameterEntry, grad: Tensor, lr: number, t: number): Record<string, Tensor> {
    const p = entry.variable;
    let g: Tensor = grad.reshape(p.shape);
    if (this.weightDecay !== 0 && this.decayFilter(entry)) g = tf.add(g, tf.mul(p, this.weightDecay));
    const kept: Record<string, Tensor> = {};
    if (this.momentum !== 0) {
      const key = `momentum/${entry.name}`;
      const previous = this.buffers.get(key);
      const buf =
        t === 1 || !previous
          ? tf.clone(g)
          : tf.add(tf.mul(previous, this.momentum), tf.mul(g, 1 - this.dampening));
      kept[key] = buf;
      g = this.nesterov ? tf.add(g, tf.mul(buf, this.momentum)) : buf;
    }
    p.assign(tf.sub(p, tf.mul(g, lr)));
    return kept;
  }
}

/**
 * Builds the optimizer `kind` from the options that apply to it (the others are ignored); an unknown kind
 * throws `INVALID_OPTION`.
 */
export function createOptimizer(kind: OptimizerKind, options: AdamWOptions & SgdOptions): Optimizer {
  if (kind === 'adamw') {
    const { momentum: _m, dampening: _d, nesterov: _n, ...adam } = options;
    return new AdamW(adam);
  }
  if (kind === 'sgd') {
    const { betas: _b, eps: _e, ...sgd } = options;
    return new Sgd(sgd);
  }
  return invalidOption('optimizer', kind, '"adamw" or "sgd"');
}
