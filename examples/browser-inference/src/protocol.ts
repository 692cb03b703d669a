/** Messages between the page and the training worker (src/worker.ts). */
import type { BackendPreference } from '@peftjs/core';
import type { MethodName } from './methods.js';

/** Normalised images `[count, 32, 32, 3]` (HWC) with their labels. */
export interface LabelledPixels {
  pixels: Float32Array;
  labels: Int32Array;
}

/** What the page asks of the worker. */
export type ToWorker =
  | { type: 'init'; prefer: BackendPreference; backboneUrl: string }
  | {
      type: 'train';
      method: MethodName;
      epochs: number;
      seed: number;
      numClasses: number;
      train: LabelledPixels;
      /** Scored every epoch (the live accuracy curve) and used to pick the epoch kept. */
      val: LabelledPixels;
      /** Scored once at the end, on the epoch kept. */
      test?: LabelledPixels;
    }
  | { type: 'cancel' }
  | { type: 'classify'; id: number; pixels: Float32Array };

/** What the worker reports. */
export type FromWorker =
  | { type: 'ready'; backend: string; description: string; native: string }
  | { type: 'log'; line: string }
  | { type: 'phase'; text: string }
  | { type: 'step'; epoch: number; step: number; steps: number; loss: number; imagesPerSecond: number | null }
  | { type: 'eval'; epoch: number; top1: number }
  | {
      type: 'trained';
      bestEpoch: number;
      test: { top1: number; predictions: number[] } | null;
      /** Training images per second over every step but the first of each run (which includes set-up). */
      imagesPerSecond: number;
      trainSeconds: number;
      trainableWithoutHead: number;
      configText: string;
      weights: Uint8Array;
    }
  | { type: 'cancelled' }
  | { type: 'classified'; id: number; logits: number[] }
  | { type: 'error'; message: string };
