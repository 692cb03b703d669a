import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { loadNativeKernels } from './gemm.js';

export { randomFloats, referenceGemm, relativeMaxDiff } from './test-reference.js';

let wasmPathSet = false;

/** Activates a tfjs backend (wasm binaries come from the installed package, no network). */
export async function useBackend(name: 'wasm' | 'cpu'): Promise<void> {
  if (name === 'wasm' && !wasmPathSet) {
    const require = createRequire(import.meta.url);
    setWasmPaths(`${join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist')}/`);
    wasmPathSet = true;
  }
  if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend(${name}) failed`);
  await tf.ready();
}

/**
 * The native status for this test file. Tests needing the addon are skipped only where it cannot load, with the
 * reason printed; under CI (CI set) an unavailable addon is a failure of its own test instead (see native.test.ts).
 */
export function nativeStatusForTests(): ReturnType<typeof loadNativeKernels> {
  const status = loadNativeKernels();
  if (!status.ok)
    console.warn(`[@peftjs/native tests] native kernels unavailable, skipping: ${status.reason}`);
  return status;
}

export { tf };
