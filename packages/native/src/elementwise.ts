import {
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
  getKernel,
  registerKernel,
  unregisterKernel,
} from '@tensorflow/tfjs-core';
import { loadNativeKernels, nativeThreads, requireAddon } from './gemm.js';
import { type NativeBackendName, type Slot, runInPlace } from './kernels.js';

/**
 * Native replacements for the data-movement and element-wise kernels a training step calls most often on the wasm
 * and cpu backends — `Add`, `Sub`, `Multiply` (same shapes, a scalar, or a trailing vector such as a bias) and
 * `Transpose` — split over both cores like the other native kernels. Any other case (integer tensors, general
 * broadcasting) runs tfjs's own kernel, unchanged. Same kernel names, so tfjs's gradients apply.
 */

const BINARY_OPS = { Add: 0, Sub: 1, Multiply: 2 } as const;
const KERNELS = [...Object.keys(BINARY_OPS), 'Transpose'] as const;

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/** How `a op b` maps onto the native kernel: operands in order, b's period and the output shape; null: stock. */
function binaryPlan(
  op: number,
  a: TensorInfo,
  b: TensorInfo,
): { first: TensorInfo; second: TensorInfo; period: number; outShape: number[] } | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const [na, nb] = [size(a.shape), size(b.shape)];
  if (sameShape(a.shape, b.shape)) return { first: a, second: b, period: na, outShape: [...a.shape] };
  // b broadcast over a: a scalar, or a's trailing axes (leading axes of b of size 1).
  const trailing = (big: TensorInfo, small: TensorInfo) => {
    const dims = [...small.shape];
    while (dims.length > 0 && dims[0] === 1) dims.shift();
    return (
      dims.length <= big.shape.length && sameShape(big.shape.slice(big.shape.length - dims.length), dims)
    );
  };
  if (b.shape.length <= a.shape.length && trailing(a, b))
    return { first: a, second: b, period: nb, outShape: [...a.shape] };
  const commutative = op !== BINARY_OPS.Sub;
  if (commutative && a.shape.length <= b.shape.length && trailing(b, a))
    return { first: b, second: a, period: na, outShape: [...b.shape] };
  return null;
}

function binaryKernel(
  name: keyof typeof BINARY_OPS,
  backendName: NativeBackendName,
  stock: KernelConfig,
): KernelFunc {
  const addon = requireAddon();
  const op = BINARY_OPS[name];
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const plan = binaryPlan(op, a, b);
    if (plan === null || plan.period === 0) return stock.kernelFunc(args);
    const n = size(plan.outShape);
    const outs = runInPlace(
      backendName,
      args.backend,
      [plan.first, plan.second],
      [plan.outShape],
      (ins, outSlots) => {
        const [x, y] = ins as [Slot, Slot];
        const out = outSlots[0] as Slot;
        addon.binary(
          op,
          x.data,
          x.offset,
          y.data,
          y.offset,
          out.data,
          out.offset,
          n,
          plan.period,
          nativeThreads(),
        );
      },
    );
    return outs ? (outs[0] as TensorInfo) : stock.kernelFunc(args);
  };
}

function transposeKernel(backendName: NativeBackendName, stock: KernelConfig): KernelFunc {
  const addon = requireAddon();
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const perm = ((args.attrs ?? {}) as { perm?: number[] }).perm ?? [];
    const identity = perm.every((p, i) => p === i);
    if (
      x.dtype !== 'float32' ||
      identity ||
      perm.length !== x.shape.length ||
      perm.length > 8 ||
      size(x.shape) === 0
    )
      return stock.kernelFunc(args);
    const outShape = perm.map((p) => x.shape[p] as number);
    const outs = runInPlace(backendName, args.backend, [x], [outShape], ([input], [out]) => {
      const [src, dst] = [input as Slot, out as Slot];
      addon.transpose(src.data, src.offset, dst.data, dst.offset, x.shape, perm, nativeThreads());
    });
    return outs ? (outs[0] as TensorInfo) : stock.kernelFunc(args);
  };
}

const stockKernels = new Map<NativeBackendName, KernelConfig[]>();

/**
 * Replaces tfjs's `Add`, `Sub`, `Multiply` and `Transpose` kernels on `backendName` with native ones for float32
 * tensors (element-wise with the same shapes, a scalar or a trailing vector; any transpose of rank ≤ 8); other cases
 * run the stock kernel. Returns false, changing nothing, when the native kernels are unavailable or a stock kernel is
 * missing; installing twice is a no-op that returns true.
 */
export function installNativeElementwise(backendName: NativeBackendName): boolean {
  if (stockKernels.has(backendName)) return true;
  if (!loadNativeKernels().ok) return false;
  const stock = KERNELS.map((name) => getKernel(name, backendName));
  if (stock.some((k) => k === undefined)) return false;
  for (const config of stock as KernelConfig[]) {
    const name = config.kernelName;
    const kernelFunc =
      name === 'Transpose'
        ? transposeKernel(backendName, config)
        : binaryKernel(name as keyof typeof BINARY_OPS, backendName, config);
    unregisterKernel(name, backendName);
    // The stock setup/dispose hooks stay: the fallback cases call the stock kernel, which the wasm backend wires up
    // in its setupFunc when it initialises.
    const replacement: KernelConfig = { kernelName: name, backendName, kernelFunc };
    if (config.setupFunc) replacement.setupFunc = config.setupFunc;
    if (config.disposeFunc) replacement.disposeFunc = config.disposeFunc;
    registerKernel(replacement);
  }
  stockKernels.set(backendName, stock as KernelConfig[]);
  return true;
}

/** Restores tfjs's own `Add`, `Sub`, `Multiply` and `Transpose` on `backendName`. False when not installed. */
export function uninstallNativeElementwise(backendName: NativeBackendName): boolean {
  const stock = stockKernels.get(backendName);
  if (!stock) return false;
  for (const config of stock) {
    unregisterKernel(config.kernelName, backendName);
    registerKernel(config);
  }
  stockKernels.delete(backendName);
  return true;
}

/** Whether {@link installNativeElementwise} is in effect for `backendName`. */
export function isNativeElementwiseInstalled(backendName: NativeBackendName): boolean {
  return stockKernels.has(backendName);
}
