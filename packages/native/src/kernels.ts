import {
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
  getKernel,
  registerKernel,
  unregisterKernel,
} from '@tensorflow/tfjs-core';
import { loadNativeKernels, requireAddon, runPlan } from './gemm.js';
import { planMatMul } from './plan.js';

/** The backends whose BatchMatMul kernel can be replaced. */
export type NativeBackendName = 'wasm' | 'cpu';

const KERNEL = 'BatchMatMul';

/** What the kernels need from tfjs-backend-wasm's `BackendWasm` (tensor data lives in WebAssembly memory). */
interface WasmBackendLike {
  wasm: { HEAPF32: Float32Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

/** What the kernels need from tfjs-backend-cpu's `MathBackendCPU` (tensor data in JS typed arrays). */
interface CpuBackendLike {
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

function wasmKernel(stock: KernelConfig): KernelFunc {
  const addon = requireAddon();
  return (args) => {
    const { inputs, attrs } = unpack(args);
    const { a, b } = inputs;
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return stock.kernelFunc(args);
    const backend = args.backend as WasmBackendLike;
    const aData = backend.dataIdMap.get(a.dataId);
    const bData = backend.dataIdMap.get(b.dataId);
    if (!aData || !bData || aData.memoryOffset % 4 !== 0 || bData.memoryOffset % 4 !== 0) {
      return stock.kernelFunc(args);
    }
    const plan = planMatMul(a.shape, b.shape, attrs.transposeA === true, attrs.transposeB === true);
    const out = backend.makeOutput(plan.outShape, 'float32');
    if (plan.batch * plan.m * plan.n === 0) return out;
    try {
      const outData = backend.dataIdMap.get(out.dataId);
      if (!outData) throw new Error('BatchMatMul: the wasm backend lost the output buffer');
      // Read the heap view only now: allocating the output may have grown (and replaced) WebAssembly memory.
      const heap = backend.wasm.HEAPF32;
      runPlan(
        addon,
        plan,
        heap,
        aData.memoryOffset / 4,
        heap,
        bData.memoryOffset / 4,
        heap,
        outData.memoryOffset / 4,
      );
    } catch (error) {
      backend.disposeData(out.dataId, true);
      throw error;
    }
    return out;
  };
}

function cpuKernel(stock: KernelConfig): KernelFunc {
  const addon = requireAddon();
  return (args) => {
    const { inputs, attrs } = unpack(args);
    const { a, b } = inputs;
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return stock.kernelFunc(args);
    const backend = args.backend as CpuBackendLike;
    const aValues = backend.data.get(a.dataId)?.values;
    const bValues = backend.data.get(b.dataId)?.values;
    if (!(aValues instanceof Float32Array) || !(bValues instanceof Float32Array))
      return stock.kernelFunc(args);
    const plan = planMatMul(a.shape, b.shape, attrs.transposeA === true, attrs.transposeB === true);
    const values = new Float32Array(plan.batch * plan.m * plan.n);
    runPlan(addon, plan, aValues, 0, bValues, 0, values, 0);
    return backend.makeTensorInfo(plan.outShape, 'float32', values);
  };
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
  const kernelFunc = backendName === 'wasm' ? wasmKernel(stock) : cpuKernel(stock);
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
