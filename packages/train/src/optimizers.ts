import {
  type HostTensor,
  invalidOption,
  type ParameterEntry,
  PeftError,
  type PeftModel,
  requireNumberInRange,
  tf,
} from '@peftjs/core';
import type { Tensor } from '@peftjs/core';

export type OptimizerKind = 'adamw' | 'sgd';

/** Everything an optimizer needs to continue exactly where it stopped; tensors are host copies. */
export interface OptimizerState {
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
  readonly kind: OptimizerKind;
  /** Default learning rate, used when `step` gets none. */
  readonly lr: number;
  step(model: PeftModel, grads: Readonly<Record<string, Tensor>>, lr?: number): void;
  state(): OptimizerState;
  loadState(state: OptimizerState): void;
  /** Frees the moment buffers. */
  dispose(): void;
}

/** Chooses which parameters get weight decay; the default reads the registry's `decay` flag. */
export type DecayFilter = (entry: ParameterEntry) => boolean;

const registryDecay: DecayFilter = (entry) => entry.decay;

export interface AdamWOptions {
  lr?: number;
  betas?: readonly [number, number];
  eps?: number;
  weightDecay?: number;
  decayFilter?: DecayFilter;
}

export interface SgdOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
  decayFilter?: DecayFilter;
}

function requireNonNegative(option: string, value: number): number {
  return requireNumberInRange(option, value, 0, Number.MAX_VALUE);
}

/** Moment buffers by key, with host snapshots for checkpoints. */
abstract class BufferedOptimizer implements Optimizer {
  abstract readonly kind: OptimizerKind;
  readonly lr: number;
  protected readonly buffers = new Map<string, Tensor>();
  protected readonly paramSteps = new Map<string, number>();
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
  readonly kind = 'adamw' as const;
  readonly betas: readonly [number, number];
  readonly eps: number;
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
  readonly kind = 'sgd' as const;
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
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
