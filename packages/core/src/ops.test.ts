import {
  installFusedKernels,
  installNativeMatMul,
  loadNativeKernels,
  uninstallFusedKernels,
  uninstallNativeMatMul,
} from '@peftjs/native';
import { FUSED_KERNELS } from '@peftjs/native/kernel-names';
import { expect, it } from 'vitest';
import { describeBackends, expectTensorClose } from './testing/index.js';
import {
  gelu,
  layerNorm,
  linear,
  matMulT,
  repeatBatch,
  segmentSoftmax,
  softmax,
  softmaxCrossEntropy,
  transposedMatMulIsFast,
} from './ops.js';
import { clsSaliency, selectTokens, topKSelection } from './saliency.js';
import { tf } from './tf.js';

await describeBackends('ops', () => {
  it('GELU is the exact erf form (torch.nn.GELU reference values)', () => {
    // torch.nn.GELU()(torch.tensor([-3., -1., -0.5, 0., 0.5, 1., 3.]))
    const y = gelu(tf.tensor1d([-3, -1, -0.5, 0, 0.5, 1, 3]));
    expectTensorClose(y, [-0.0040496, -0.1586553, -0.1542687, 0, 0.3457313, 0.8413447, 2.9959503], {
      atol: 1e-6,
    });
  });

  it('LayerNorm uses the biased variance with eps inside the square root', () => {
    const x = tf.tensor2d([
      [1, 2, 3, 4],
      [-1, 0, 0, 5],
    ]);
    const y = layerNorm(x, tf.tensor1d([1, 2, 1, 1]), tf.tensor1d([0, 0, 1, 0]), 1e-6);
    const rows = [
      [1, 2, 3, 4],
      [-1, 0, 0, 5],
    ].map((r) => {
      const m = r.reduce((a, b) => a + b, 0) / 4;
      const v = r.reduce((a, b) => a + (b - m) ** 2, 0) / 4;
      return r.map((value, i) => ((value - m) / Math.sqrt(v + 1e-6)) * [1, 2, 1, 1][i]! + [0, 0, 1, 0][i]!);
    });
    expectTensorClose(y, rows.flat(), { atol: 1e-5 });
  });

  it('matmul gradients (all four transpose combinations) equal the analytic ones', () => {
    const a = tf.randomNormal([3, 4, 5], 0, 1, 'float32', 1);
    const b = tf.randomNormal([3, 5, 6], 0, 1, 'float32', 2);
    const w = tf.randomNormal([3, 4, 6], 0, 1, 'float32', 3);
    const t = (x: tf.Tensor) => tf.transpose(x, [0, 2, 1]);
    // loss = Σ w ⊙ (A·B): dA = w·Bᵀ, dB = Aᵀ·w, computed here with plain ops on untransposed operands.
    const dA = tf.matMul(w, t(b));
    const dB = tf.matMul(t(a), w);
    const cases: [boolean, boolean][] = [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ];
    for (const [ta, tb] of cases) {
      const aIn = ta ? t(a) : a;
      const bIn = tb ? t(b) : b;
      const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(w, tf.matMul(x, y, ta, tb))))([
        aIn,
        bIn,
      ]);
      expectTensorClose(ga!, ta ? t(dA) : dA, { atol: 1e-4, label: `dA (tA=${ta}, tB=${tb})` });
      expectTensorClose(gb!, tb ? t(dB) : dB, { atol: 1e-4, label: `dB (tA=${ta}, tB=${tb})` });
    }
  });

  it('linear folds any leading shape into one GEMM', () => {
    const x = tf.reshape(tf.range(0, 24), [2, 3, 4]);
    const w = tf.reshape(tf.range(0, 8), [4, 2]);
    const y = linear(x, w, tf.tensor1d([1, -1]));
    expect(y.shape).toEqual([2, 3, 2]);
    expectTensorClose(
      tf.reshape(y, [6, 2]),
      tf.add(tf.matMul(tf.reshape(x, [6, 4]), w), tf.tensor1d([1, -1])),
      {
        atol: 0,
      },
    );
  });

  it('repeatBatch: copies along the batch, and its gradient is one sum over the batch (no chain of adds)', async () => {
    const x = tf.tensor3d([1, 2, 3, 4, 5, 6], [1, 2, 3]);
    const probe = tf.randomNormal([16, 2, 3], 0, 1, 'float32', 9);
    expectTensorClose(repeatBatch(x, 16), tf.tile(x, [16, 1, 1]), { atol: 0 });
    const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(repeatBatch(t, 16), probe)));
    expectTensorClose(grad(x), tf.sum(probe, 0, true), { atol: 1e-5 });
    const info = await tf.profile(() => tf.tidy(() => void grad(x)));
    expect(info.kernelNames.filter((n) => n === 'Add')).toEqual([]);
    expect(repeatBatch(x, 1)).toBe(x);
    expect(() => repeatBatch(probe, 2)).toThrow(/needs a batch-1 tensor; got \[16,2,3\]/);
    tf.dispose([x, probe]);
  });

  it('cross-entropy equals −mean log softmax at the label', () => {
    const logits = tf.tensor2d([
      [2, 0, -1],
      [0.5, 0.5, 3],
    ]);
    const loss = softmaxCrossEntropy(logits, tf.tensor1d([0, 1], 'int32'));
    const lse = (r: number[]) => Math.log(r.reduce((a, v) => a + Math.exp(v), 0));
    const expected = (lse([2, 0, -1]) - 2 + (lse([0.5, 0.5, 3]) - 0.5)) / 2;
    expect(loss.dataSync()[0]).toBeCloseTo(expected, 5);
  });
});

await describeBackends('saliency selection', () => {
  it('selects the k most salient tokens as a float one-hot that gathers rows', () => {
    const saliency = tf.tensor2d([
      [0.1, 0.9, 0.5],
      [0.7, 0.2, 0.3],
    ]);
    const selection = topKSelection(saliency, 2);
    expect(selection.dtype).toBe('float32');
    expect(selection.arraySync()).toEqual([
      [
        [0, 1, 0],
        [0, 0, 1],
      ],
      [
        [1, 0, 0],
        [0, 0, 1],
      ],
    ]);
    const tokens = tf.tensor3d([
      [
        [1, 1],
        [2, 2],
        [3, 3],
      ],
      [
        [4, 4],
        [5, 5],
        [6, 6],
      ],
    ]);
    expect(selectTokens(selection, tokens).arraySync()).toEqual([
      [
        [2, 2],
        [3, 3],
      ],
      [
        [4, 4],
        [6, 6],
      ],
    ]);
  });

  it('reads CLS saliency as the head mean of the CLS row over image keys', () => {
    // [B=1, H=2, Nq=2, Nk=4] with 3 image tokens: the prompt key column (index 3) must be ignored.
    const logits = tf.tensor4d([
      [
        [
          [1, 2, 3, 100],
          [9, 9, 9, 9],
        ],
        [
          [3, 2, 1, 100],
          [9, 9, 9, 9],
        ],
      ],
    ]);
    expect(clsSaliency(logits, 3).arraySync()).toEqual([[2, 2, 2]]);
  });
});

await describeBackends('matMulT: transpose flags or explicit transposes, by backend', (backend) => {
  const swappable = backend === 'wasm' && loadNativeKernels().ok;

  /** Runs `fn` with tfjs-wasm's own matmul in place of the native one (the slow-flags case), then restores it. */
  async function withStockWasmMatMul<T>(fn: () => Promise<T>): Promise<T> {
    uninstallNativeMatMul('wasm');
    try {
      return await fn();
    } finally {
      installNativeMatMul('wasm');
    }
  }

  /** Values and gradients of Σ w ⊙ op(a)·op(b) for every flag pair, and the kernels one gradient ran. */
  async function run() {
    const a = tf.randomNormal([2, 5, 5], 0, 1, 'float32', 1);
    const b = tf.randomNormal([2, 5, 5], 0, 1, 'float32', 2);
    const w = tf.randomNormal([2, 5, 5], 0, 1, 'float32', 3);
    const fast = transposedMatMulIsFast();
    const values: Float32Array[] = [];
    for (const [ta, tb] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const) {
      const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(w, matMulT(x, y, ta, tb)));
      const { value, grads } = tf.valueAndGrads(f)([a, b]);
      values.push(...[value, ...grads].map((t) => t.dataSync() as Float32Array));
      tf.dispose([value, ...grads]);
    }
    const profile = await tf.profile(() =>
      tf.dispose(tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.matMul(x, y)))([a, b])),
    );
    tf.dispose([a, b, w]);
    return { fast, values, kernels: profile.kernelNames };
  }

  it('takes the flags wherever they are fast, so the matmul gradient runs no Transpose kernel', async () => {
    const { fast, kernels } = await run();
    expect(fast).toBe(backend !== 'wasm' || swappable);
    if (fast) expect(kernels).not.toContain('Transpose');
  });

  it.skipIf(!swappable)(
    "on tfjs-wasm's own matmul it transposes explicitly, with the same values and gradients",
    async () => {
      const native = await run();
      const stock = await withStockWasmMatMul(() => run());
      expect(stock.fast).toBe(false);
      expect(stock.kernels).toContain('Transpose');
      for (const [i, v] of native.values.entries()) {
        expectTensorClose(v, stock.values[i] as Float32Array, { atol: 1e-5, label: `output ${i}` });
      }
    },
  );
});

await describeBackends('fused GELU and LayerNorm (@peftjs/native)', (backend) => {
  const native = loadNativeKernels();
  const fusable = native.ok && (backend === 'wasm' || backend === 'cpu');

  /** Σ w ⊙ LN(GELU(x)) and its gradients with respect to x, the LayerNorm weight and bias. */
  function lossAndGrads(
    x: tf.Tensor,
    weight: tf.Tensor1D,
    bias: tf.Tensor1D,
    probe: tf.Tensor,
  ): Float32Array[] {
    return tf.tidy(() => {
      const f = (xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
        tf.sum(tf.mul(layerNorm(gelu(xi), wi as tf.Tensor1D, bi as tf.Tensor1D, 1e-6), probe));
      const { value, grads } = tf.valueAndGrads(f)([x, weight, bias]);
      return [value, ...grads].map((t) => t.dataSync() as Float32Array);
    });
  }

  it.skipIf(!fusable)('initBackend installs the fused kernels, and gelu/layerNorm run them', () => {
    expect(tf.getKernel(FUSED_KERNELS.gelu, backend)).toBeDefined();
    const x = tf.randomNormal([2, 3, 8], 0, 1, 'float32', 5);
    return tf
      .profile(() =>
        tf.tidy(() => {
          layerNorm(gelu(x), tf.ones([8]) as tf.Tensor1D, tf.zeros([8]) as tf.Tensor1D, 1e-6);
        }),
      )
      .then((info) => {
        expect(info.kernelNames).toContain(FUSED_KERNELS.gelu);
        expect(info.kernelNames).toContain(FUSED_KERNELS.layerNorm);
        expect(info.kernelNames).not.toContain('Erf');
        x.dispose();
      });
  });

  it.skipIf(!fusable)(
    'values and gradients equal the composite tfjs ops, and a training loop does not leak',
    () => {
      const x = tf.randomNormal([4, 7, 24], 0, 2, 'float32', 1);
      const weight = tf.randomNormal([24], 1, 0.3, 'float32', 2) as tf.Tensor1D;
      const bias = tf.randomNormal([24], 0, 0.3, 'float32', 3) as tf.Tensor1D;
      const probe = tf.randomNormal([4, 7, 24], 0, 1, 'float32', 4);
      const fused = lossAndGrads(x, weight, bias, probe);
      uninstallFusedKernels(backend as 'wasm' | 'cpu');
      let composite: Float32Array[];
      try {
        expect(tf.getKernel(FUSED_KERNELS.gelu, backend)).toBeUndefined();
        composite = lossAndGrads(x, weight, bias, probe);
      } finally {
        installFusedKernels(backend as 'wasm' | 'cpu');
      }
      const names = ['loss', 'dx', 'dweight', 'dbias'];
      fused.forEach((values, i) => {
        const want = composite[i] as Float32Array;
        let worst = 0;
        for (let j = 0; j < want.length; j++)
          worst = Math.max(
            worst,
            Math.abs((values[j] as number) - (want[j] as number)) / (1 + Math.abs(want[j] as number)),
          );
        expect(worst, names[i]).toBeLessThan(1e-5);
      });
      lossAndGrads(x, weight, bias, probe);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) lossAndGrads(x, weight, bias, probe);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, weight, bias, probe]);
    },
  );
});

await describeBackends('native linear (bias epilogue) and segment softmax', (backend) => {
  const native = loadNativeKernels();
  const fusable = native.ok && (backend === 'wasm' || backend === 'cpu');

  /** Values and gradients of a loss through linear → segmentSoftmax, with respect to x, W, b. */
  function run(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, probe: tf.Tensor): Float32Array[] {
    return tf.tidy(() => {
      const f = (xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
        tf.sum(tf.mul(segmentSoftmax(linear(xi, wi, bi), 7, 0.9, 0.1), probe));
      const { value, grads } = tf.valueAndGrads(f)([x, w, b]);
      const plain = softmax(linear(x, w, b));
      return [value, ...grads, plain].map((t) => t.dataSync() as Float32Array);
    });
  }

  it('segmentSoftmax is two softmaxes weighted per segment; softmax equals tf.softmax', () => {
    const x = tf.tensor2d([
      [1, 2, 3, 0, 5],
      [-1, 0, 4, 4, -2],
    ]);
    const y = segmentSoftmax(x, 3, 0.9, 0.1);
    const [a, b] = tf.split(x, [3, 2], 1) as [tf.Tensor, tf.Tensor];
    const want = tf.concat([tf.mul(tf.softmax(a), 0.9), tf.mul(tf.softmax(b), 0.1)], 1);
    expectTensorClose(y, want, { atol: 1e-7 });
    expectTensorClose(softmax(x), tf.softmax(x), { atol: 1e-7 });
    expectTensorClose(segmentSoftmax(x, 0, 1, 0.5), tf.mul(tf.softmax(x), 0.5), { atol: 1e-7 });
    expect(() => segmentSoftmax(x, 6, 1, 1)).toThrow(/split must be an integer in \[0, 5\], got 6/);
    expect(() => segmentSoftmax(x, 2, -1, 1)).toThrow(/weights must be ≥ 0, got -1 and 1/);
  });

  it.skipIf(!fusable)('linear runs one PeftjsLinear kernel (no BatchMatMul, no Add)', async () => {
    const x = tf.randomNormal([2, 3, 8], 0, 1, 'float32', 1);
    const w = tf.randomNormal([8, 5], 0, 1, 'float32', 2);
    const b = tf.randomNormal([5], 0, 1, 'float32', 3);
    const info = await tf.profile(() => tf.tidy(() => void linear(x, w, b)));
    expect(info.kernelNames).toEqual([FUSED_KERNELS.linear]);
    tf.dispose([x, w, b]);
  });

  it.skipIf(!fusable)('values and gradients equal the composite tfjs ops; repeated runs leak nothing', () => {
    const x = tf.randomNormal([3, 5, 24], 0, 1, 'float32', 1);
    const w = tf.randomNormal([24, 19], 0, 0.3, 'float32', 2);
    const b = tf.randomNormal([19], 0, 0.3, 'float32', 3);
    const probe = tf.randomNormal([3, 5, 19], 0, 1, 'float32', 4);
    const fused = run(x, w, b, probe);
    uninstallFusedKernels(backend as 'wasm' | 'cpu');
    let composite: Float32Array[];
    try {
      composite = run(x, w, b, probe);
    } finally {
      installFusedKernels(backend as 'wasm' | 'cpu');
    }
    ['loss', 'dx', 'dW', 'db', 'softmax(linear)'].forEach((name, i) => {
      expectTensorClose(fused[i] as Float32Array, composite[i] as Float32Array, { atol: 2e-5, label: name });
    });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run(x, w, b, probe);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, w, b, probe]);
  });
});
