/**
 * The four methods the page offers, with the recipe used in the page, in the test and in Node (one definition:
 * the worker, `scripts/train-digits.ts` and `test/browser.test.ts` all read this file).
 */
import { linearProbe, lora, vpt } from '@peftjs/baselines';
import type { PeftPlugin } from '@peftjs/core';
import { ship } from '@peftjs/ship';

/** A method the page can train. */
export interface Method {
  /** Shown in the method picker. */
  readonly label: string;
  /** Peak learning rate (AdamW, cosine per step, no warm-up). */
  readonly lr: number;
  /** A fresh plugin list for one model. */
  readonly plugins: () => PeftPlugin[];
}

/** Names of `METHODS`. */
export type MethodName = 'ship' | 'lora' | 'vpt' | 'linear';

/** The methods, with the mini-VTAB benchmark's settings (docs/results.md) and a learning rate for short runs. */
export const METHODS: Readonly<Record<MethodName, Method>> = {
  ship: {
    label: 'SHIP (10 prompts, 50 prototypes)',
    lr: 1e-2,
    plugins: () => ship({ threshold: 0.97, promptLength: 10, hierarchy: { prototypes: 50 } }),
  },
  lora: { label: 'LoRA (rank 8 on q, v)', lr: 1e-2, plugins: () => [lora({ rank: 8, alpha: 8 })] },
  vpt: { label: 'VPT-deep (10 tokens)', lr: 1e-2, plugins: () => [vpt({ mode: 'deep', tokens: 10 })] },
  linear: { label: 'linear probe', lr: 1e-2, plugins: () => [linearProbe()] },
};

/** Whether `name` is one of `METHODS`. */
export function isMethodName(name: string): name is MethodName {
  return Object.hasOwn(METHODS, name);
}

/** Training options shared by the page and Node (`train()` from @peftjs/train); lr comes from the method. */
export const TRAIN_DEFAULTS = {
  batchSize: 32,
  weightDecay: 1e-4,
  schedule: 'cosine-step',
  warmupEpochs: 0,
  selection: 'val',
} as const;

/** How the bundled digit adapter (public/model/adapter) was trained by scripts/train-digits.ts. */
export const DIGITS_RECIPE = {
  method: 'ship',
  seed: 1,
  trainCount: 2000,
  valCount: 500,
  train: { ...TRAIN_DEFAULTS, epochs: 5 },
} as const satisfies {
  method: MethodName;
  seed: number;
  trainCount: number;
  valCount: number;
  train: object;
};
