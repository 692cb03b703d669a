/**
 * The frozen base is a guarantee: every method, trained one after the other on ONE shared backbone in this
 * process, leaves that backbone bit-for-bit as loaded; a model built afterwards equals one built in a fresh
 * process that never trained anything; and each trained model survives save → load exactly.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type PeftModel,
  type Tensor1D,
  type Tensor4D,
  backboneFingerprint,
  loadAdapter,
  saveAdapter,
} from '@peftjs/core';
import { describeBackends } from '@peftjs/core/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { VisionTransformer } from '@peftjs/backbone';
import {
  ALL_PLUGIN_FACTORIES,
  METHOD_CASES,
  bits,
  buildCase,
  caseBackbone,
  caseData,
  freshLogitBits,
  tf,
} from './method-cases.js';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../../../..');
const STEPS = 3;

function freshProcessLogits(backend: string): Record<string, string> {
  const out = execFileSync(
    process.execPath,
    ['--conditions=@peftjs/source', '--import', 'tsx', 'packages/cli/test/fresh-logits.ts', backend],
    { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, PEFTJS_LOG: 'silent' }, maxBuffer: 64 << 20 },
  );
  return JSON.parse(out.trim().split('\n').pop() as string) as Record<string, string>;
}

/** A few Adam steps on 8-image batches: enough to move every trained tensor. */
function trainFewSteps(model: PeftModel, images: Tensor4D, labels: Tensor1D): void {
  const optimizer = tf.train.adam(0.05);
  for (let step = 0; step < STEPS; step++) {
    const start = (step % 2) * 8;
    const x = tf.slice(images, [start, 0, 0, 0], [8, -1, -1, -1]) as Tensor4D;
    const y = tf.slice(labels, [start], [8]) as Tensor1D;
    const { loss, grads } = model.lossAndGradients(x, y);
    model.applyGradients(optimizer, grads);
    tf.dispose([x, y, loss, ...Object.values(grads)]);
  }
  optimizer.dispose();
}

await describeBackends('the frozen base across every method', (backend) => {
  let backbone: VisionTransformer;
  let images: Tensor4D;
  let labels: Tensor1D;
  let pristine: string;
  let fresh: Record<string, string>;
  let dir: string;

  beforeAll(async () => {
    fresh = freshProcessLogits(backend);
    backbone = caseBackbone();
    ({ images, labels } = caseData());
    pristine = backboneFingerprint(backbone);
    dir = await mkdtemp(join(tmpdir(), 'peftjs-ownership-'));
  });
  afterAll(async () => {
    tf.dispose([images, labels]);
    backbone.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('the fresh process and this one agree before anything is trained', async () => {
    for (const name of Object.keys(METHOD_CASES)) {
      expect(await freshLogitBits(name, backbone, images), name).toBe(fresh[name]);
    }
  });

  it.each(Object.keys(METHOD_CASES))(
    '%s: training leaves the base untouched, save → load equals memory, later models equal a fresh process',
    async (name) => {
      const model = await buildCase(name, backbone, images);
      const before = model.predict(images);
      trainFewSteps(model, images, labels);
      const after = model.predict(images);
      expect(bits(after), 'training changed the model').not.toBe(bits(before));
      expect(backboneFingerprint(backbone), 'base fingerprint after training').toBe(pristine);

      const saved = join(dir, name);
      await saveAdapter(model, saved);
      const loaded = await loadAdapter(backbone, saved, { factories: ALL_PLUGIN_FACTORIES });
      const reloaded = loaded.predict(images);
      expect(bits(reloaded), 'loaded adapter vs in-memory model').toBe(bits(after));
      tf.dispose([before, after, reloaded]);
      loaded.dispose();
      model.dispose();
      expect(backboneFingerprint(backbone), 'base fingerprint after dispose').toBe(pristine);

      // Every method built now, after this one trained (and those before it), equals a fresh process.
      for (const other of Object.keys(METHOD_CASES)) {
        expect(await freshLogitBits(other, backbone, images), `${other} built after ${name}`).toBe(
          fresh[other],
        );
      }
    },
  );
});
