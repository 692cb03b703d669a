import {
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
  getKernel,
  registerKernel,
  unregisterKernel,
} from '@tensorflow/tfjs-core';
import { loadNativeKernels, nativeThreads, requireAddon, runPlan } from './gemm.js';
import { FUSED_KERNELS, NATIVE_MATMUL_MARK } from './kernel-names.js';
import { planMatMul } from './plan.js';

/** The backends the native kernels can be installed on (their tensors live in memory the addon can address). */
export type NativeBackendName = 'wasm' | 'cpu';

const KERNEL = 'BatchMatMul';

/** @internal What the kernels need from tfjs-backend-wasm's `BackendWasm` (tensor data in WebAssembly memory). */
export interface WasmBackendLike {
  wasm: { HEAPF32: Float32Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

/** @internal What the kernels need from tfjs-backend-cpu's `MathBackendCPU` (tensor data in JS typed arrays). */
export interface CpuBackendLike {
  data: { get(dataId: object): { values?: unknown } | undefined };
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo;
}

interface MatMulArgs {
  inputs: { a: TensorInfo; b: TensorInfo };
  attrs: { transposeA?: boolean; transposeB?: boolean };
}

function unpack(args: Parameters<KernelFunc>[0]): MatMulArgs {
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
  return { inputs: { a, b }, attrs };
}

/** @internal A float32 tensor's storage as the addon sees it: an array and the float offset where it starts. */
export interface Slot {
  data: Float32Array;
  offset: number;
}

/**
 * @internal Runs `compute` on the in-place storage of `inputs` and of freshly allocated float32 outputs of
 * `outShapes`, for the wasm backend (WebAssembly memory) or the cpu backend (JS typed arrays). Returns null,
 * allocating nothing, when some input is not float32 or not addressable in place (the caller then falls back).
 */
export function runInPlace(
  backendName: NativeBackendName,
  backend: unknown,
  inputs: TensorInfo[],
  outShapes: number[][],
  compute: (ins: Slot[], outs: Slot[]) => void,
): TensorInfo[] | null {
  if (inputs.some((t) => t.dtype !== 'float32')) return null;
  if (backendName === 'cpu') {
    const cpu = backend as CpuBackendLike;
    const values = inputs.map((t) => cpu.data.get(t.dataId)?.values);
    if (!values.every((v): v is Float32Array => v instanceof Float32Array)) return null;
    const outs = outShapes.map((shape) => new Float32Array(shape.reduce((a, b) => a * b, 1)));
    compute(
      values.map((data) => ({ data, offset: 0 })),
      outs.map((data) => ({ data, offset: 0 })),
    );
    return outs.map((data, i) => cpu.makeTensorInfo(outShapes[i] as number[], 'float32', data));
  }
  const wasm = backend as WasmBackendLike;
  const offsets = inputs.map((t) => wasm.dataIdMap.get(t.dataId)?.memoryOffset);
  if (!offsets.every((o): o is number => o !== undefined && o % 4 === 0)) return null;
  const outs = outShapes.map((shape) => wasm.makeOutput(shape, 'float32'));
  try {
    const outOffsets = outs.map((t) => wasm.dataIdMap.get(t.dataId)?.memoryOffset);
    if (!outOffsets.every((o): o is number => o !== undefined))
      throw new Error('the wasm backend lost an output buffer');
    // Read the heap view only now: allocating the outputs may have grown (and replaced) WebAssembly memory.
    const heap = wasm.wasm.HEAPF32;
    compute(
      offsets.map((o) => ({ data: heap, offset: o / 4 })),
      outOffsets.map((o) => ({ data: heap, offset: o / 4 })),
    );
  } catch (error) {
    for (const t of outs) wasm.disposeData(t.dataId, true);
    throw error;
  }
  return outs;
}

function matMulKernel(backendName: NativeBackendName, stock: KernelConfig): KernelFunc {
  const addon = requireAddon();
  return (args) => {
    const { inputs, attrs } = unpack(args);
    const { a, b } = inputs;
    const plan = planMatMul(a.shape, b.shape, attrs.transposeA === true, attrs.transposeB === true);
    const outs = runInPlace(backendName, args.backend, [a, b], [plan.outShape], ([sa, sb], [so]) => {
      const [x, y, o] = [sa as Slot, sb as Slot, so as Slot];
      runPlan(addon, plan, x.data, x.offset, y.data, y.offset, o.data, o.offset);
    });
    return outs ? (outs[0] as TensorInfo) : stock.kernelFunc(args);
  };
}

function lastAxis(name: string, x: TensorInfo, weight: TensorInfo): { rows: number; dim: number } {
  const dim = x.shape[x.shape.length - 1] ?? 0;
  if (weight.shape.length !== 1 || weight.shape[0] !== dim)
    throw new Error(`${name}: weight must have shape [${dim}] (the last axis of x), got [${weight.shape}]`);
  return { rows: dim === 0 ? 0 : x.shape.reduce((a, b) => a * b, 1) / dim, dim };
}

/** An addon entry point taking (array, offset) per input and output, in that order, then its scalars. */
type FlatAddonCall = (...args: (Float32Array | number)[]) => void;

function fusedKernels(backendName: NativeBackendName): Record<string, KernelFunc> {
  const addon = requireAddon();
  // Inputs must be float32 tensors the addon can address; anything else is a caller bug, not a fallback case.
  const run = (
    name: string,
    args: Parameters<KernelFunc>[0],
    inputs: TensorInfo[],
    outShapes: number[][],
    call: FlatAddonCall,
    scalars: number[],
  ): TensorInfo[] => {
    const outs = runInPlace(backendName, args.backend, inputs, outShapes, (ins, outSlots) =>
      call(...[...ins, ...outSlots].flatMap((slot) => [slot.data, slot.offset]), ...scalars, nativeThreads()),
    );
    if (!outs) throw new Error(`${name}: inputs must be float32 tensors of the wasm or cpu backend`);
    return outs;
  };
  const size = (t: TensorInfo) => t.shape.reduce((a, b) => a * b, 1);
  return {
    [FUSED_KERNELS.gelu]: (args) => {
      const { x } = args.inputs as { x: TensorInfo };
      const call = addon.gelu as FlatAddonCall;
      return run(FUSED_KERNELS.gelu, args, [x], [[...x.shape]], call, [size(x)])[0] as TensorInfo;
    },
    [FUSED_KERNELS.geluGrad]: (args) => {
      const { dy, x } = args.inputs as { dy: TensorInfo; x: TensorInfo };
      const call = addon.geluGrad as FlatAddonCall;
      return run(FUSED_KERNELS.geluGrad, args, [dy, x], [[...x.shape]], call, [size(x)])[0] as TensorInfo;
    },
    [FUSED_KERNELS.layerNorm]: (args) => {
      const { x, weight, bias } = args.inputs as { x: TensorInfo; weight: TensorInfo; bias: TensorInfo };
      const { eps } = args.attrs as { eps: number };
      const { rows, dim } = lastAxis(FUSED_KERNELS.layerNorm, x, weight);
      const call = addon.layerNorm as FlatAddonCall;
      const outShapes = [[...x.shape]];
      return run(FUSED_KERNELS.layerNorm, args, [x, weight, bias], outShapes, call, [
        rows,
        dim,
        eps,
      ])[0] as TensorInfo;
    },
    [FUSED_KERNELS.layerNormGrad]: (args) => {
      const { dy, x, weight } = args.inputs as { dy: TensorInfo; x: TensorInfo; weight: TensorInfo };
      const { eps } = args.attrs as { eps: number };
      const { rows, dim } = lastAxis(FUSED_KERNELS.layerNormGrad, x, weight);
      const call = addon.layerNormGrad as FlatAddonCall;
      const outShapes = [[...x.shape], [dim], [dim]];
      return run(FUSED_KERNELS.layerNormGrad, args, [dy, x, weight], outShapes, call, [rows, dim, eps]);
    },
    [FUSED_KERNELS.linear]: (args) => linearKernel(backendName, addon, args),
    [FUSED_KERNELS.softmax]: (args) => {
      const { x } = args.inputs as { x: TensorInfo };
      const { rows, n, split, weight0, weight1 } = softmaxArgs(FUSED_KERNELS.softmax, x, args.attrs);
      const call = addon.softmax as FlatAddonCall;
      return run(FUSED_KERNELS.softmax, args, [x], [[...x.shape]], call, [
        rows,
        n,
        split,
        weight0,
        weight1,
      ])[0] as TensorInfo;
    },
    [FUSED_KERNELS.softmaxGrad]: (args) => {
      const { dy, y } = args.inputs as { dy: TensorInfo; y: TensorInfo };
      if (!sameShape(dy.shape, y.shape))
        throw new Error(`${FUSED_KERNELS.softmaxGrad}: dy [${dy.shape}] and y [${y.shape}] differ in shape`);
      const { rows, n, split, weight0, weight1 } = softmaxArgs(FUSED_KERNELS.softmaxGrad, y, args.attrs);
      const call = addon.softmaxGrad as FlatAddonCall;
      return run(FUSED_KERNELS.softmaxGrad, args, [dy, y], [[...y.shape]], call, [
        rows,
        n,
        split,
        weight0,
        weight1,
      ])[0] as TensorInfo;
    },
  };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** The row count, row length and segment attributes of a softmax kernel call, checked. */
function softmaxArgs(
  name: string,
  x: TensorInfo,
  attrs: unknown,
): { rows: number; n: number; split: number; weight0: number; weight1: number } {
  const n = x.shape[x.shape.length - 1] ?? 1;
  const given = (attrs ?? {}) as { split?: number; weight0?: number; weight1?: number };
  const split = given.split ?? n;
  if (!Number.isInteger(split) || split < 0 || split > n)
    throw new Error(`${name}: split must be an integer in [0, ${n}] (the last axis), got ${split}`);
  const rows = n === 0 ? 0 : x.shape.reduce((a, b) => a * b, 1) / n;
  return { rows, n, split, weight0: given.weight0 ?? 1, weight1: given.weight1 ?? 1 };
}

/** `act(x·weight + bias)` for x `[..., in]` and weight `[in, out]`, one native GEMM with its epilogue. */
function linearKernel(
  backendName: NativeBackendName,
  addon: ReturnType<typeof requireAddon>,
  args: Parameters<KernelFunc>[0],
): TensorInfo {
  const name = FUSED_KERNELS.linear;
  const { x, weight, bias } = args.inputs as { x: TensorInfo; weight: TensorInfo; bias?: TensorInfo };
  const { activation = 'linear' } = (args.attrs ?? {}) as { activation?: string };
  if (activation !== 'linear' && activation !== 'gelu')
    throw new Error(`${name}: activation must be "linear" or "gelu", got "${activation}"`);
  const inFeatures = x.shape[x.shape.length - 1] ?? 0;
  if (x.shape.length < 1 || weight.shape.length !== 2 || weight.shape[0] !== inFeatures)
    throw new Error(`${name}: weight must be [${inFeatures}, out] for x [${x.shape}], got [${weight.shape}]`);
  const outFeatures = weight.shape[1] as number;
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== outFeatures))
    throw new Error(`${name}: bias must be [${outFeatures}], got [${bias.shape}]`);
  const rows = inFeatures === 0 ? 0 : x.shape.reduce((a, b) => a * b, 1) / inFeatures;
  const inputs = bias ? [x, weight, bias] : [x, weight];
  const outShape = [...x.shape.slice(0, -1), outFeatures];
  const outs = runInPlace(backendName, args.backend, inputs, [outShape], (ins, [out]) => {
    const [sx, sw, sb] = ins as [Slot, Slot, Slot | undefined];
    const o = out as Slot;
    addon.linear(
      sx.data,
      sx.offset,
      sw.data,
      sw.offset,
      sb ? sb.data : null,
      sb ? sb.offset : 0,
      o.data,
      o.offset,
      rows,
      inFeatures,
      outFeatures,
      activation === 'gelu',
      nativeThreads(),
    );
  });
  if (!outs) throw new Error(`${name}: inputs must be float32 tensors of the wasm or cpu backend`);
  return outs[0] as TensorInfo;
}

const stockKernels = new Map<NativeBackendName, KernelConfig>();

/**
 * Replaces tfjs's `BatchMatMul` kernel on `backendName` (every `tf.matMul`, including those inside gradients)
 * with the native GEMM, reading and writing tensor memory in place. The backend package must be imported (its
 * kernels registered); it need not be initialised yet. Returns false, changing nothing, when the native kernels
 * are unavailable (see {@link loadNativeKernels}) or the backend has no stock kernel to fall back on. Installing
 * twice is a no-op that returns true.
 */
export function installNativeMatMul(backendName: NativeBackendName): boolean {
  if (stockKernels.has(backendName)) return true;
  if (!loadNativeKernels().ok) return false;
  const stock = getKernel(KERNEL, backendName);
  if (!stock) return false;
  const kernelFunc = Object.assign(matMulKernel(backendName, stock), { [NATIVE_MATMUL_MARK]: true });
  unregisterKernel(KERNEL, backendName);
  // The stock setup/dispose hooks stay: the fallback (non-float32 inputs) calls the stock kernel, which the wasm
  // backend wires up in its setupFunc when it initialises.
  const config: KernelConfig = { kernelName: KERNEL, backendName, kernelFunc };
  if (stock.setupFunc) config.setupFunc = stock.setupFunc;
  if (stock.disposeFunc) config.disposeFunc = stock.disposeFunc;
  registerKernel(config);
  stockKernels.set(backendName, stock);
  return true;
}

/** Restores tfjs's own `BatchMatMul` kernel on `backendName`. Returns false when the native one was not installed. */
export function uninstallNativeMatMul(backendName: NativeBackendName): boolean {
  const stock = stockKernels.get(backendName);
  if (!stock) return false;
  unregisterKernel(KERNEL, backendName);
  registerKernel(stock);
  stockKernels.delete(backendName);
  return true;
}

/** Whether {@link installNativeMatMul} is in effect for `backendName`. */
export function isNativeMatMulInstalled(backendName: NativeBackendName): boolean {
  return stockKernels.has(backendName);
}

/** tfjs's own `BatchMatMul` kernel for `backendName` while the native one is installed (for comparisons). */
export function stockMatMulKernel(backendName: NativeBackendName): KernelConfig | undefined {
  return stockKernels.get(backendName);
}

const fusedInstalled = new Set<NativeBackendName>();

/**
 * Registers the fused GELU and LayerNorm kernels (forward and gradient; names in {@link FUSED_KERNELS}) on
 * `backendName`. `@peftjs/core`'s `gelu` and `layerNorm` use them wherever they are registered for the active
 * backend. Returns false, changing nothing, when the native kernels are unavailable; installing twice is a
 * no-op that returns true.
 */
export function installFusedKernels(backendName: NativeBackendName): boolean {
  if (fusedInstalled.has(backendName)) return true;
  if (!loadNativeKernels().ok) return false;
  for (const [kernelName, kernelFunc] of Object.entries(fusedKernels(backendName)))
    registerKernel({ kernelName, backendName, kernelFunc });
  fusedInstalled.add(backendName);
  return true;
}

/** Removes the fused kernels from `backendName` (core falls back to composite ops). False when not installed. */
export function uninstallFusedKernels(backendName: NativeBackendName): boolean {
  if (!fusedInstalled.delete(backendName)) return false;
  for (const kernelName of Object.values(FUSED_KERNELS)) unregisterKernel(kernelName, backendName);
  return true;
}

/** Whether {@link installFusedKernels} is in effect for `backendName`. */
export function areFusedKernelsInstalled(backendName: NativeBackendName): boolean {
  return fusedInstalled.has(backendName);
}
