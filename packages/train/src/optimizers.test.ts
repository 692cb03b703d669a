import { createPeftModel, type PeftModel, type Tensor, tf } from '@peftjs/core';
import { describeBackends, expectNoLeakedTensors } from '@peftjs/core/testing';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { AdamW, type Optimizer, Sgd } from './optimizers.js';
import { ParamsBackbone, trainEverything } from '@peftjs/test-fixtures';

const W0 = [0.5, -1.0, 0.25, 2.0];
const B0 = [0.1, -0.2];
// Step t (1-based) gradients: different magnitudes and signs per element and over time.
const gradW = (t: number) => [0.1 * t, -0.2, 0.3 / t, 0.05];
const gradB = (t: number) => [0.5, -0.5 * t];

interface Hyper {
  lr: number;
  wd: number;
}

/** PyTorch AdamW, element by element, in double precision. */
function adamwReference(
  p0: number[],
  grad: (t: number) => number[],
  steps: number,
  h: Hyper,
  decay: boolean,
) {
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  for (let t = 1; t <= steps; t++) {
    const g = grad(t);
    for (let i = 0; i < p.length; i++) {
      const gi = g[i] as number;
      if (decay) p[i] = (p[i] as number) * (1 - h.lr * h.wd);
      m[i] = (m[i] as number) + (gi - (m[i] as number)) * (1 - b1);
      v[i] = (v[i] as number) * b2 + (1 - b2) * gi * gi;
      const denom = Math.sqrt(v[i] as number) / Math.sqrt(1 - b2 ** t) + eps;
      p[i] = (p[i] as number) - (h.lr / (1 - b1 ** t)) * ((m[i] as number) / denom);
    }
  }
  return p;
}

/** torch.optim.SGD, element by element, in double precision. */
function sgdReference(
  p0: number[],
  grad: (t: number) => number[],
  steps: number,
  h: Hyper & { momentum: number; nesterov: boolean },
  decay: boolean,
) {
  const p = [...p0];
  const buf = p.map(() => 0);
  for (let t = 1; t <= steps; t++) {
    const g = grad(t);
    for (let i = 0; i < p.length; i++) {
      let d = (g[i] as number) + (decay ? h.wd * (p[i] as number) : 0);
      buf[i] = t === 1 ? d : h.momentum * (buf[i] as number) + d;
      d = h.nesterov ? d + h.momentum * (buf[i] as number) : (buf[i] as number);
      p[i] = (p[i] as number) - h.lr * d;
    }
  }
  return p;
}

function expectClose(actual: ArrayLike<number>, expected: number[], label: string) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    expect(Math.abs((actual[i] as number) - (expected[i] as number)), `${label}[${i}]`).toBeLessThan(1e-6);
  }
}

await describeBackends('optimizers against hand-computed references', () => {
  let backbone: ParamsBackbone;
  let model: PeftModel;

  beforeEach(() => {
    backbone = new ParamsBackbone({ w: { data: W0, shape: [2, 2] }, b: { data: B0, shape: [2] } });
    model = createPeftModel(backbone, [trainEverything]);
  });
  afterEach(() => {
    model.dispose();
    backbone.dispose();
  });

  /** Steps `first`, …, `first + steps − 1` with the gradients of those step numbers. */
  function run(optimizer: Optimizer, steps: number, lr?: number, first = 1) {
    for (let t = first; t < first + steps; t++) {
      const grads: Record<string, Tensor> = {
        w: tf.tensor2d(gradW(t), [2, 2]),
        b: tf.tensor1d(gradB(t)),
      };
      optimizer.step(model, grads, lr);
      tf.dispose(Object.values(grads));
    }
  }
  const values = (name: string) => model.registry.get(name).dataSync();

  it('AdamW: registry decay flags (rank-2 yes, 1-D no) and bias-corrected moments as PyTorch', () => {
    expect(model.registry.entry('w').decay).toBe(true);
    expect(model.registry.entry('b').decay).toBe(false);
    const h = { lr: 0.1, wd: 0.01 };
    const opt = new AdamW({ lr: h.lr, weightDecay: h.wd });
    run(opt, 1);
    // First step by hand: m̂ = g, v̂ = g², so p ← p(1 − lr·wd) − lr·g/(|g| + ε).
    expect(values('w')[0]).toBeCloseTo(0.5 * (1 - 0.001) - (0.1 * 0.1) / (0.1 + 1e-8), 6);
    expect(values('b')[1]).toBeCloseTo(-0.2 + (0.1 * 0.5) / (0.5 + 1e-8), 6);
    run(opt, 2, undefined, 2);
    expect(opt.state().step).toBe(3);
    expectClose(values('w'), adamwReference(W0, gradW, 3, h, true), 'w');
    expectClose(values('b'), adamwReference(B0, gradB, 3, h, false), 'b');
    opt.dispose();
  });

  it('AdamW: decayFilter overrides the registry flag; step(lr) overrides the default lr', () => {
    const h = { lr: 0.05, wd: 0.5 };
    const opt = new AdamW({ lr: 1, weightDecay: h.wd, decayFilter: (e) => e.name === 'b' });
    run(opt, 3, h.lr);
    expectClose(values('w'), adamwReference(W0, gradW, 3, h, false), 'w');
    expectClose(values('b'), adamwReference(B0, gradB, 3, h, true), 'b');
    opt.dispose();
  });

  for (const nesterov of [false, true]) {
    it(`SGD (momentum 0.9, nesterov ${nesterov}, weight decay) as torch.optim.SGD`, () => {
      const h = { lr: 0.1, wd: 0.01, momentum: 0.9, nesterov };
      const opt = new Sgd({ lr: h.lr, momentum: h.momentum, nesterov, weightDecay: h.wd });
      run(opt, 3);
      expectClose(values('w'), sgdReference(W0, gradW, 3, h, true), 'w');
      expectClose(values('b'), sgdReference(B0, gradB, 3, h, false), 'b');
      opt.dispose();
    });
  }

  it('plain SGD is p − lr·g', () => {
    const opt = new Sgd({ lr: 0.5 });
    run(opt, 1);
    expectClose(
      values('w'),
      W0.map((p, i) => p - 0.5 * (gradW(1)[i] as number)),
      'w',
    );
    opt.dispose();
  });

  it('state() / loadState() continue exactly, and steps do not leak tensors', async () => {
    for (const make of [
      () => new AdamW({ lr: 0.1, weightDecay: 0.1 }),
      () => new Sgd({ lr: 0.1, momentum: 0.9 }),
    ]) {
      const a = make();
      run(a, 2);
      const saved = a.state();
      expect(Object.keys(saved.tensors).sort()).toEqual(
        a.kind === 'adamw' ? ['m/b', 'm/w', 'v/b', 'v/w'] : ['momentum/b', 'momentum/w'],
      );
      const params = { w: values('w').slice(), b: values('b').slice() };
      run(a, 2, undefined, 3);
      const expected = { w: values('w').slice(), b: values('b').slice() };
      model.registry.get('w').assign(tf.tensor2d(params.w, [2, 2]));
      model.registry.get('b').assign(tf.tensor1d(params.b));
      const b = make();
      b.loadState(saved);
      run(b, 2, undefined, 3);
      expect(values('w')).toEqual(expected.w);
      expect(values('b')).toEqual(expected.b);
      await expectNoLeakedTensors(() => run(b, 1));
      a.dispose();
      b.dispose();
    }
  });

  it('rejects wrong options and foreign state with a message naming the option', () => {
    expect(() => new AdamW({ betas: [0.9, 1] })).toThrow(/option "betas"/);
    expect(() => new Sgd({ nesterov: true })).toThrow(/option "nesterov"/);
    expect(() => new AdamW({ lr: -1 })).toThrow(/option "lr"/);
    const sgd = new Sgd({ lr: 0.1, momentum: 0.5 });
    run(sgd, 1);
    expect(() => new AdamW().loadState(sgd.state())).toThrow(/option "optimizer"/);
    sgd.dispose();
  });
});
