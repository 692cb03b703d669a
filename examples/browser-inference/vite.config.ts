import { defineConfig } from 'vite';

export default defineConfig({
  // Resolve the workspace packages to their TypeScript sources (no package build needed), as vitest does.
  resolve: {
    conditions: ['@peftjs/source', 'browser', 'module', 'import', 'default'],
    dedupe: [
      '@tensorflow/tfjs',
      '@tensorflow/tfjs-core',
      '@tensorflow/tfjs-backend-wasm',
      '@tensorflow/tfjs-backend-webgpu',
    ],
  },
  build: {
    target: 'es2022',
    chunkSizeWarningLimit: 4000,
    // The packages load node:* modules and pngjs only inside Node-only functions (file I/O, initBackend's lookup of
    // the .wasm folder when no wasmPaths is given, the heatmap PNG), by dynamic import, and the page never calls
    // those. Left external,
    // Vite prints no "externalized for browser compatibility" warning per import, and a page that did reach one
    // would fail naming the module instead of calling into Vite's empty stand-in.
    rollupOptions: { external: [/^node:/, 'pngjs'] },
  },
  // The training worker is an ES module (so WebGPU's chunk can load on demand); the same externals apply to it.
  worker: { format: 'es', rollupOptions: { external: [/^node:/, 'pngjs'] } },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
