import { describe, expect, it } from 'vitest';
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
  it('falls back in order tensorflow-gpu → tensorflow → wasm and reports why each was skipped', async () => {
    const lines: string[] = [];
    const choice = await initBackend({
      env: {},
      log: (line) => lines.push(line),
      importModule: importer({
        '@tensorflow/tfjs-node-gpu': 'libcudart.so.11.0: cannot open shared object file',
        '@tensorflow/tfjs-node': "Cannot find module '@tensorflow/tfjs-node'",
      }),
    });
    expect(choice.requested).toBe('auto');
    expect(choice.backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(choice.skipped.map((s) => s.backend)).toEqual(['tensorflow-gpu', 'tensorflow']);
    expect(choice.skipped[0]?.reason).toMatch(/libcudart/);
    expect(choice.skipped[1]?.reason).toMatch(/Cannot find module/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /backend wasm .*tensorflow-gpu skipped: libcudart.*tensorflow skipped: Cannot find/,
    );
  });

  it('falls back to cpu when wasm cannot load either', async () => {
    const choice = await initBackend({
      env: {},
      log: false,
      importModule: importer({
        '@tensorflow/tfjs-node-gpu': 'missing',
        '@tensorflow/tfjs-node': 'missing',
        '@tensorflow/tfjs-backend-wasm': 'wasm disabled',
      }),
    });
    expect(choice.backend).toBe('cpu');
    expect(choice.skipped.map((s) => `${s.backend}:${s.reason}`)).toEqual([
      'tensorflow-gpu:missing',
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
      /PEFTJS_BACKEND.*must be one of auto, tensorflow-gpu, tensorflow, wasm, cpu; got "gpu"/,
    );
  });

  it('lets the option win over the environment variable', async () => {
    const choice = await initBackend({ prefer: 'wasm', env: { PEFTJS_BACKEND: 'cpu' }, log: false });
    expect(choice).toMatchObject({ backend: 'wasm', source: 'option' });
  });
});
