import { type Plugin, defineConfig } from 'vite';

/**
 * PEFT.js packages import a few Node modules at the top level (@peftjs/core: node:fs/promises, node:path,
 * node:crypto, node:module for file I/O, adapter files and backend selection; @peftjs/hierarchy: pngjs for the
 * affinity heatmap). The page never calls those code paths, so they resolve to a stub whose every export throws
 * when called, naming the module — a loud failure instead of a silent one if the page ever reaches them.
 */
function nodeOnlyStubs(): Plugin {
  const PREFIX = '\0peftjs-node-stub:';
  return {
    name: 'peftjs-node-only-stubs',
    enforce: 'pre',
    resolveId(id) {
      return id.startsWith('node:') || id === 'pngjs' ? PREFIX + id : null;
    },
    load(id) {
      if (!id.startsWith(PREFIX)) return null;
      const name = JSON.stringify(id.slice(PREFIX.length));
      return {
        code: `const fail = (key) => () => { throw new Error(${name} + '.' + String(key) + ' is not available in the browser'); };
export default new Proxy({}, { get: (_, key) => (key === 'then' || typeof key === 'symbol' ? undefined : fail(key)) });`,
        syntheticNamedExports: true,
      };
    },
  };
}

export default defineConfig({
  plugins: [nodeOnlyStubs()],
  // Resolve the workspace packages to their TypeScript sources (no package build needed), as vitest does.
  resolve: {
    conditions: ['@peftjs/source', 'browser', 'module', 'import', 'default'],
    dedupe: ['@tensorflow/tfjs', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm'],
  },
  build: { target: 'es2022', chunkSizeWarningLimit: 4000 },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
