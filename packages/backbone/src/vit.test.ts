import { fileURLToPath } from 'node:url';
import { type Tensor, type Tensor4D, tf } from '@peftjs/core';
import { type SafetensorsFile, readSafetensors } from '@peftjs/core/safetensors';
import { describeBackends, expectNoLeakedTensors, expectTensorClose } from '@peftjs/core/testing';
import { beforeAll, expect, it } from 'vitest';
import { loadVit } from './load.js';
import { toStorageLayout, vitParameterSpecs } from './parameters.js';
import type { VisionTransformer } from './vit.js';

const fixture = (name: string, file: string) =>
  fileURLToPath(new URL(`../test/fixtures/${name}/${file}`, import.meta.url));

const PARITY_ATOL = 1e-4;

for (const name of ['tiny-vit', 'tiny-vit-3ch-p8']) {
  await describeBackends(`PyTorch parity (${name})`, () => {
    let vit: VisionTransformer;
    let inputs: SafetensorsFile;
    let expected: SafetensorsFile;
    let images: Tensor4D;

    beforeAll(async () => {
      vit = (await loadVit(fixture(name, 'model.safetensors'))).model;
      inputs = await readSafetensors(fixture(name, 'inputs.safetensors'));
      expected = await readSafetensors(fixture(name, 'expected.safetensors'));
      const img = inputs.getHost('images');
      images = tf.tensor4d(img.data, img.shape as [number, number, number, number]);
    });

    const expectedTensor = (key: string): Tensor => {
      const t = expected.getHost(key);
      return tf.tensor(t.data, t.shape);
    };

    it('matches logits, every block output, block-0 attention logits and the final CLS features', () => {
      const out = vit.forwardIntermediates(images);
      expectTensorClose(out.logits, expectedTensor('logits'), { atol: PARITY_ATOL, label: 'logits' });
      expectTensorClose(out.features, expectedTensor('final_cls'), { atol: PARITY_ATOL, label: 'final CLS' });
      expectTensorClose(tf.stack(out.blockOutputs), expectedTensor('block_outputs'), {
        atol: PARITY_ATOL,
        label: 'block outputs',
      });
      const cls = tf.stack(out.blockOutputs.map((b) => tf.squeeze(tf.slice(b, [0, 0, 0], [-1, 1, -1]), [1])));
      expectTensorClose(cls, expectedTensor('block_cls'), { atol: PARITY_ATOL, label: 'per-block CLS' });
      expectTensorClose(out.attnLogits[0] as Tensor, expectedTensor('attn_logits_block0'), {
        atol: PARITY_ATOL,
        label: 'block-0 attention logits',
      });
      tf.dispose([out.logits, out.features, ...out.blockOutputs, ...out.attnLogits, cls]);
    });

    it('matches PyTorch gradients of the cross-entropy loss for parameters and input images', () => {
      const labelsHost = inputs.getFloat32('labels');
      const labels = tf.tensor1d(Array.from(labelsHost), 'int32');
      const gradNames = expected.names().filter((n) => n.startsWith('grad.') && n !== 'grad.images');
      const specs = new Map(vitParameterSpecs(vit.config).map((s) => [s.name, s]));
      const variables = gradNames.map((n) => vit.registry.get(n.slice(5)));
      for (const v of variables) v.trainable = true;
      const lossFn = (x: Tensor4D) => {
        const logits = vit.predict(x);
        const oneHot = tf.oneHot(labels, logits.shape[1]);
        return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), -1))) as tf.Scalar;
      };
      const { value, grads } = tf.variableGrads(() => lossFn(images), variables);
      expectTensorClose(value, expectedTensor('loss'), { atol: PARITY_ATOL, label: 'loss' });
      gradNames.forEach((gradName, i) => {
        const paramName = gradName.slice(5);
        const torchGrad = expectedTensor(gradName);
        const storedGrad = toStorageLayout(specs.get(paramName)!, torchGrad);
        expectTensorClose(grads[(variables[i] as tf.Variable).name] as Tensor, storedGrad, {
          atol: PARITY_ATOL,
          label: gradName,
        });
        tf.dispose([torchGrad, storedGrad]);
      });
      const imageGrad = tf.grad((x: Tensor) => lossFn(x as Tensor4D))(images);
      expectTensorClose(imageGrad, expectedTensor('grad.images'), {
        atol: PARITY_ATOL,
        label: 'grad.images',
      });
      for (const v of variables) v.trainable = false;
      tf.dispose([value, labels, imageGrad, ...Object.values(grads)]);
    });

    it('does not leak tensors across repeated forwards', async () => {
      await expectNoLeakedTensors(() => {
        const logits = vit.predict(images);
        logits.dispose();
        const inter = vit.forwardIntermediates(images);
        tf.dispose([inter.logits, inter.features, ...inter.blockOutputs, ...inter.attnLogits]);
      });
    });

    it('is deterministic: same input, same logits', () => {
      const a = vit.predict(images);
      const b = vit.predict(images);
      expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
      tf.dispose([a, b]);
    });
  });
}
