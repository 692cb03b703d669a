import { tf } from './tf.js';

/**
 * Copy-free data-movement kernels for tfjs-backend-wasm 4.22.
 *
 * Measured in a VPT training step (batch 16, depth 12; `tf.profile`), three stock wasm kernels spent ~20 % of all
 * kernel time moving bytes they did not need to move:
 * - `Identity` copies the tensor, and the engine clones (Identity) every tensor it saves for the backward pass;
 * - `Slice` (and `SplitV`, built on it) first reads the WHOLE input out of WebAssembly memory into a fresh JS array
 *   (`readSync`) and only then copies the slice out of that array.
 * The replacements give Identity the semantics tfjs's cpu backend already has (share the immutable buffer and count
 * the reference, as the wasm backend's own Reshape does) and copy slices straight out of the heap. Values are
 * unchanged bit for bit; string tensors keep the stock kernels.
 */

/** What these kernels need from tfjs-backend-wasm's `BackendWasm`. */
interface WasmBackendLike {
  incRef(dataId: object): void;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
}

interface SliceAttrs {
  begin: number | number[];
  size: number | number[];
}

interface SplitAttrs {
  numOrSizeSplits: number | number[];
  axis: number | number[];
}

const BACKEND = 'wasm';
const stock = new Map<string, tf.KernelConfig>();

/** Copies `x[begin : begin + size]` (any rank) from the heap into a new output, one contiguous run at a time. */
function sliceFromHeap(
  backend: WasmBackendLike,
  x: tf.TensorInfo,
  begin: number[],
  size: number[],
): tf.TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  const count = size.reduce((a, b) => a * b, 1);
  if (count === 0) return out;
  // Views only after the output exists: allocating it may have grown (and replaced) WebAssembly memory.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  const strides = new Array<number>(rank).fill(1);
  for (let axis = rank - 2; axis >= 0; axis--)
    strides[axis] = (strides[axis + 1] as number) * (x.shape[axis + 1] as number);
  // Trailing axes taken whole fold into one contiguous run; the axes before it are walked as an odometer.
  let runAxis = rank - 1;
  while (runAxis > 0 && size[runAxis] === x.shape[runAxis] && begin[runAxis] === 0) runAxis--;
  const run = (size[runAxis] as number) * (strides[runAxis] as number);
  const outer = count / run;
  const index = new Array<number>(runAxis).fill(0);
  let base = 0;
  for (let axis = 0; axis <= runAxis; axis++) base += (begin[axis] as number) * (strides[axis] as number);
  let offset = base;
  for (let i = 0, written = 0; i < outer; i++, written += run) {
    dst.set(src.subarray(offset, offset + run), written);
    for (let axis = runAxis - 1; axis >= 0; axis--) {
      index[axis] = (index[axis] as number) + 1;
      offset += strides[axis] as number;
      if ((index[axis] as number) < (size[axis] as number)) break;
      offset -= (size[axis] as number) * (strides[axis] as number);
      index[axis] = 0;
    }
  }
  return out;
}

const identityKernel: tf.KernelFunc = (args) => {
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string') return (stock.get('Identity') as tf.KernelConfig).kernelFunc(args);
  (args.backend as WasmBackendLike).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
};

const sliceKernel: tf.KernelFunc = (args) => {
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string') return (stock.get('Slice') as tf.KernelConfig).kernelFunc(args);
  const { begin, size } = args.attrs as unknown as SliceAttrs;
  const [begin_, size_] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size) as [number[], number[]];
  return sliceFromHeap(args.backend as WasmBackendLike, x, begin_, size_);
};

const splitKernel: tf.KernelFunc = (args) => {
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string') return (stock.get('SplitV') as tf.KernelConfig).kernelFunc(args);
  const { numOrSizeSplits, axis } = args.attrs as unknown as SplitAttrs;
  const splitAxis = tf.util.parseAxisParam(axis, x.shape)[0] as number;
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, splitAxis);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = [...x.shape];
    size[splitAxis] = s;
    const part = sliceFromHeap(args.backend as WasmBackendLike, x, begin, size);
    begin[splitAxis] = (begin[splitAxis] as number) + s;
    return part;
  });
};

const REPLACEMENTS: Readonly<Record<string, tf.KernelFunc>> = {
  Identity: identityKernel,
  Slice: sliceKernel,
  SplitV: splitKernel,
};

/**
 * Registers the copy-free `Identity`, `Slice` and `SplitV` kernels on the wasm backend (`initBackend` does this
 * whenever it picks wasm). The backend package must be imported. Returns false, changing nothing, when a stock
 * kernel is missing; installing twice is a no-op that returns true.
 */
export function installWasmCopyFreeKernels(): boolean {
  if (stock.size > 0) return true;
  const found = Object.keys(REPLACEMENTS).map((name) => tf.getKernel(name, BACKEND));
  if (found.some((k) => k === undefined)) return false;
  for (const config of found as tf.KernelConfig[]) {
    tf.unregisterKernel(config.kernelName, BACKEND);
    tf.registerKernel({
      kernelName: config.kernelName,
      backendName: BACKEND,
      kernelFunc: REPLACEMENTS[config.kernelName] as tf.KernelFunc,
    });
    stock.set(config.kernelName, config);
  }
  return true;
}

/** Puts tfjs's own wasm `Identity`, `Slice` and `SplitV` back. Returns false when they were not replaced. */
export function uninstallWasmCopyFreeKernels(): boolean {
  if (stock.size === 0) return false;
  for (const config of stock.values()) {
    tf.unregisterKernel(config.kernelName, BACKEND);
    tf.registerKernel(config);
  }
  stock.clear();
  return true;
}

/** Whether {@link installWasmCopyFreeKernels} is in effect. */
export function areWasmCopyFreeKernelsInstalled(): boolean {
  return stock.size > 0;
}
