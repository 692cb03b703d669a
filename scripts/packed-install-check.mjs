// Run by scripts/packed-install.test.ts inside a scratch project where only the packed @peftjs tarballs (and their
// registry dependencies) are installed: plain Node, no TypeScript, no workspace links, no @peftjs/source condition.
// Imports every `exports` subpath of every package given on the command line, runs a tiny LoRA ViT and the heatmap
// (the lazily loaded pngjs), loads that ViT by Hub reference from the loopback mock hub, checks that an option
// typo is refused, and prints one JSON line for the test to check.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(join(process.cwd(), 'package.json'));
const packages = JSON.parse(process.argv[2] ?? '[]');

/** Specifier → its export names (JSON subpaths are loaded with require: Node 20 warns on JSON imports). */
const subpaths = {};
for (const name of packages) {
  const manifest = JSON.parse(
    readFileSync(join(process.cwd(), 'node_modules', name, 'package.json'), 'utf8'),
  );
  for (const subpath of Object.keys(manifest.exports ?? { '.': null })) {
    const specifier = subpath === '.' ? name : `${name}/${subpath.slice(2)}`;
    subpaths[specifier] = subpath.endsWith('.json')
      ? Object.keys(require(specifier))
      : Object.keys(await import(specifier));
  }
}

const { createPeftModel, initBackend, tf } = await import('@peftjs/core');
const { serializeSafetensors } = await import('@peftjs/core/safetensors');
const { VisionTransformer, customVit, loadVit } = await import('@peftjs/backbone');
const { MockHub } = await import('@peftjs/hub/testing');
const { lora } = await import('@peftjs/baselines');
const { affinityHeatmapPng } = await import('@peftjs/hierarchy');

// An explicit preference so a PEFTJS_BACKEND in the caller's environment cannot change what is tested.
const choice = await initBackend({ prefer: 'auto', log: false });
const config = customVit({ imageSize: 16, patchSize: 8, dim: 32, depth: 2, heads: 2, numClasses: 5 });
const vit = VisionTransformer.create(config, { seed: 0 });
const model = createPeftModel(vit, [lora({ rank: 2, alpha: 4 })], { seed: 0 });
const images = tf.randomUniform([2, 16, 16, 3], -1, 1, 'float32', 1);
const logits = model.predict(images);
const values = Array.from(await logits.data());
// A Hub reference through the packed backbone → hub link: served by the loopback mock hub, loaded twice (the
// second time from the cache, with no request).
const weights = serializeSafetensors(
  [...vit.toTorchTensors()].map(([name, t]) => ({ name, shape: t.shape, data: t.data })),
  { config: JSON.stringify({ num_heads: 2 }) },
);
const hub = await MockHub.start({ repos: { 'acme/tiny-vit': { files: { 'model.safetensors': weights } } } });
const hubOptions = {
  endpoint: hub.endpoint,
  cacheDir: mkdtempSync(join(tmpdir(), 'peftjs-packed-hub-')),
  progress: false,
};
const fromHub = [];
for (let i = 0; i < 2; i++) {
  const loaded = await loadVit('hf:acme/tiny-vit', { hub: hubOptions });
  fromHub.push({ origin: loaded.hub.origin, dim: loaded.model.config.dim, requests: hub.requests.length });
  loaded.model.dispose();
}
await hub.close();
rmSync(hubOptions.cacheDir, { recursive: true, force: true });

const png = await affinityHeatmapPng(
  [
    [1, 0.5],
    [0.5, 1],
  ],
  [0, 1],
  { cellSize: 2 },
);

let typoRefusal = '';
try {
  lora({ rnak: 2 });
} catch (error) {
  typoRefusal = error.message;
}

console.log(
  JSON.stringify({
    subpaths,
    backend: choice.backend,
    skipped: choice.skipped,
    native: choice.native,
    logitsShape: logits.shape,
    finite: values.every(Number.isFinite),
    trainableWithoutHead: model.parameterReport().trainableWithoutHead,
    pngSignature: Array.from(png.subarray(0, 8)),
    fromHub,
    typoRefusal,
  }),
);
