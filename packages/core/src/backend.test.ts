import { afterEach, describe, expect, it } from 'vitest';
import { PeftError } from './errors.js';
import { initBackend } from './backend.js';
import { tf } from './tf.js';

const realImport = (specifier: string): Promise<unknown> => import(specifier);

/** Simulates a machine where the libtensorflow packages are missing or broken. */
function importer(broken: Record<string, string>) {
  return (specifier: string): Promise<unknown> =>
    specifier in broken ? Promise.reject(new Error(broken[specifier])) : realImport(specifier);
}

describe('initBackend', () => {
  it('falls back in order tensorflow-gpu → webgpu → tensorflow → wasm and reports why each was skipped', async () => {
    const lines: string[] = [];
    const choice = await initBackend({
      env: {},
      log: (line) => lines.push(line),
      importModule: importer({
        '@tensorflow/tfjs-node-gpu': 'libcudart.so.11.0: cannot open shared object file',
        webgpu: "Cannot find module 'webgpu'",
        '@tensorflow/tfjs-node': "Cannot find module '@tensorflow/tfjs-node'",
      }),
    });
    expect(choice.requested).toBe('auto');
    expect(choice.backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(choice.skipped.map((s) => s.backend)).toEqual(['tensorflow-gpu', 'webgpu', 'tensorflow']);
    expect(choice.skipped[0]?.reason).toMatch(/libcudart/);
    expect(choice.skipped[1]?.reason).toMatch(/Cannot find module 'webgpu'/);
    expect(choice.skipped[2]?.reason).toMatch(/Cannot find module/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /backend wasm .*tensorflow-gpu skipped: libcudart.*webgpu skipped: .*tensorflow skipped: Cannot find/,
    );
  });

  it('falls back to cpu when wasm cannot load either', async () => {
    const choice = await initBackend({
      env: {},
      log: false,
      importModule: importer({
        '@tensorflow/tfjs-node-gpu': 'missing',
        webgpu: 'missing',
        '@tensorflow/tfjs-node': 'missing',
        '@tensorflow/tfjs-backend-wasm': 'wasm disabled',
      }),
    });
    expect(choice.backend).toBe('cpu');
    expect(choice.skipped.map((s) => `${s.backend}:${s.reason}`)).toEqual([
      'tensorflow-gpu:missing',
      'webgpu:missing',
      'tensorflow:missing',
      'wasm:wasm disabled',
    ]);
  });

  it('raises one clear error when an explicitly requested backend cannot load', async () => {
    const attempt = initBackend({
      prefer: 'tensorflow',
      log: false,
      importModule: importer({ '@tensorflow/tfjs-node': "Cannot find module '@tensorflow/tfjs-node'" }),
    });
    await expect(attempt).rejects.toBeInstanceOf(PeftError);
    await expect(attempt).rejects.toThrow(
      /backend "tensorflow" was requested \(option "prefer"\).*Cannot find module/,
    );
  });

  it('reads PEFTJS_BACKEND and rejects unknown values naming the variable', async () => {
    const choice = await initBackend({ env: { PEFTJS_BACKEND: 'cpu' }, log: false });
    expect(choice).toMatchObject({ backend: 'cpu', source: 'env', skipped: [] });
    await expect(initBackend({ env: { PEFTJS_BACKEND: 'gpu' }, log: false })).rejects.toThrow(
      /PEFTJS_BACKEND.*must be one of auto, tensorflow-gpu, webgpu, tensorflow, wasm, cpu; got "gpu"/,
    );
  });

  it('lets the option win over the environment variable', async () => {
    const choice = await initBackend({ prefer: 'wasm', env: { PEFTJS_BACKEND: 'cpu' }, log: false });
    expect(choice).toMatchObject({ backend: 'wasm', source: 'option' });
  });
});

describe('initBackend: WebGPU through the webgpu package (Dawn)', () => {
  /** A stand-in for the `webgpu` package whose single adapter is `adapter` (null: the machine has none). */
  function dawnWith(adapter: { isFallbackAdapter?: boolean; info?: Record<string, unknown> } | null) {
    return {
      globals: { GPUBufferUsage: { MAP_READ: 1 } },
      create: () => ({ requestAdapter: async () => adapter }),
    };
  }
  function importerWith(dawn: unknown, extra: Record<string, string> = {}) {
    return (specifier: string): Promise<unknown> =>
      specifier === 'webgpu'
        ? Promise.resolve(dawn)
        : specifier in extra
          ? Promise.reject(new Error(extra[specifier]))
          : realImport(specifier);
  }
  const scope = globalThis as { navigator?: unknown; GPUBufferUsage?: unknown };
  const hadNavigator = 'navigator' in globalThis;
  afterEach(() => {
    // Node 20 has no navigator; newer Node versions do. Either way, leave the global scope as it was.
    if (!hadNavigator) Reflect.deleteProperty(globalThis, 'navigator');
    else if (scope.navigator && typeof scope.navigator === 'object')
      Reflect.deleteProperty(scope.navigator, 'gpu');
    Reflect.deleteProperty(globalThis, 'GPUBufferUsage');
  });

  it('skips a machine without a GPU adapter with a reason, and auto goes on to the next backend', async () => {
    const choice = await initBackend({
      env: {},
      log: false,
      importModule: importerWith(dawnWith(null), {
        '@tensorflow/tfjs-node-gpu': 'missing',
        '@tensorflow/tfjs-node': 'missing',
      }),
    });
    expect(choice.backend).toBe('wasm');
    expect(choice.skipped.find((s) => s.backend === 'webgpu')?.reason).toMatch(/no WebGPU adapter/);
    // The enums the tfjs WebGPU backend reads globally were installed from the package.
    expect(scope.GPUBufferUsage).toEqual({ MAP_READ: 1 });
  });

  it('refuses a software (fallback) adapter, naming it, when webgpu is requested explicitly', async () => {
    const software = dawnWith({
      isFallbackAdapter: true,
      info: { vendor: 'google', description: 'SwiftShader' },
    });
    const attempt = initBackend({ prefer: 'webgpu', log: false, importModule: importerWith(software) });
    await expect(attempt).rejects.toBeInstanceOf(PeftError);
    await expect(attempt).rejects.toThrow(
      /backend "webgpu" was requested.*only a software WebGPU adapter is available \(google SwiftShader\)/,
    );
  });

  it('reports a missing tfjs WebGPU backend package once a hardware adapter is found', async () => {
    const hardware = dawnWith({ info: { vendor: 'nvidia', architecture: 'ampere' } });
    const attempt = initBackend({
      prefer: 'webgpu',
      log: false,
      importModule: importerWith(hardware, {
        '@tensorflow/tfjs-backend-webgpu': "Cannot find module '@tensorflow/tfjs-backend-webgpu'",
      }),
    });
    await expect(attempt).rejects.toThrow(
      /"webgpu" was requested.*Cannot find module '@tensorflow\/tfjs-backend-webgpu'/,
    );
  });
});
