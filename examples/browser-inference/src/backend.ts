/**
 * Backend selection in the page and the worker with @peftjs/core's `initBackend` (the same order as in Node:
 * WebGPU on a hardware adapter, else wasm, else cpu). Browsers cannot import packages by name at run time, so the
 * optional backends are handed over as bundled modules: WebGPU's is a separate chunk loaded only when a hardware
 * adapter exists. The wasm binaries are served from the build (public/wasm, copied by scripts/assets.ts).
 */
import { type BackendChoice, type BackendPreference, initBackend } from '@peftjs/core';
// The union package for its side effects: the gradient and flag registrations. @peftjs/core imports it too, but
// as a side-effect-free package, and the bundler then keeps only the names it uses (no gradients: training fails
// with "gradient function not found").
import '@tensorflow/tfjs';
import * as wasmBackend from '@tensorflow/tfjs-backend-wasm';

const MODULES: Record<string, () => Promise<unknown>> = {
  '@tensorflow/tfjs-backend-wasm': async () => wasmBackend,
  '@tensorflow/tfjs-backend-webgpu': () => import('@tensorflow/tfjs-backend-webgpu'),
};

/** Initialises tfjs for this page or worker; `prefer` comes from the page's `?backend=` (default auto). */
export async function setupBackend(
  prefer: BackendPreference,
  log: (line: string) => void,
): Promise<BackendChoice> {
  return initBackend({
    prefer,
    log,
    env: {},
    wasmPaths: `${import.meta.env.BASE_URL}wasm/`,
    importModule: async (specifier) => {
      // initBackend asks for Node's Dawn package ("webgpu") only when navigator.gpu is missing.
      if (specifier === 'webgpu') throw new Error('this browser has no WebGPU (navigator.gpu is missing)');
      const load = MODULES[specifier];
      if (!load) throw new Error(`${specifier} is not available in the browser`);
      return load();
    },
  });
}

/** One line for the status bar: the backend, and why faster ones were skipped. */
export function describeBackend(choice: BackendChoice): string {
  const skipped = choice.skipped
    .filter((s) => s.backend === 'webgpu')
    .map((s) => `; WebGPU skipped: ${s.reason}`)
    .join('');
  return `${choice.backend}${choice.adapter ? ` on ${choice.adapter}` : ''}${skipped}`;
}
