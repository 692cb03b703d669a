/**
 * The VTAB-1k protocol builds every model — each selection candidate and the final refit — on one shared backbone.
 * For methods that train backbone tensors (full fine-tuning, BitFit) each of them must start from the pristine
 * base, not from the weights an earlier run trained.
 */
import { bitfit, fullFineTuning } from '@peftjs/baselines';
import {
  type PeftModel,
  type PeftPlugin,
  backboneFingerprint,
  createPeftModel,
  initBackend,
} from '@peftjs/core';
import { mnistDigits } from '@peftjs/test-fixtures';
import { arrayData, vtabProtocol } from '@peftjs/train';
import { beforeAll, describe, expect, it } from 'vitest';
import { bits, caseBackbone, caseData, tf } from './method-cases.js';

const split = (start: number, count: number) => {
  const { images, labels } = mnistDigits('t10k', start, count);
  return arrayData(images, labels, [28, 28, 1], 10);
};

describe('vtabProtocol on a shared backbone', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm', log: false });
  });

  it.each([
    ['full fine-tuning', () => [fullFineTuning()]],
    ['BitFit', () => [bitfit()]],
  ] as const)(
    '%s: every run, the final refit included, starts from the pristine base',
    async (_label, plugins) => {
      const backbone = caseBackbone();
      const pristine = backboneFingerprint(backbone);
      const { images, labels } = caseData();
      const starts: string[] = [];
      const createModel = (): PeftModel => {
        const model = createPeftModel(backbone, (plugins as () => PeftPlugin[])(), {
          seed: 4,
          numClasses: 10,
        });
        const logits = model.predict(images);
        starts.push(bits(logits));
        logits.dispose();
        return model;
      };
      const result = await vtabProtocol(
        createModel,
        { train800: split(0, 24), val200: split(24, 16), train800val200: split(0, 40), test: split(40, 16) },
        {
          epochs: 2,
          batchSize: 8,
          lr: 0.05,
          seed: 1,
          warmupEpochs: 0,
          candidates: [{ lr: 0.05 }, { lr: 0.02 }],
        },
      );
      const trained = result.model.predict(images);
      expect(bits(trained), 'the final model trained').not.toBe(starts[0]);
      expect(starts).toHaveLength(3);
      expect(new Set(starts).size, 'initial logits of the two candidates and the refit').toBe(1);
      expect(backboneFingerprint(backbone)).toBe(pristine);
      tf.dispose([trained, images, labels]);
      result.model.dispose();
      backbone.dispose();
    },
  );
});
