import { z } from '@peftjs/core';
import { OPTIMIZER_KINDS } from './optimizers.js';

/**
 * How the reported epoch can be chosen. `'val'` selects on the validation split (the test split is evaluated once,
 * at the end). `'max-test-over-epochs'` reports the best test accuracy over the evaluated epochs, as the official
 * SHIP/NOAH code does: optimistic, allowed only when named explicitly.
 */
export const SELECTIONS = ['val', 'max-test-over-epochs'] as const;

/**
 * Every learning-rate schedule `train` knows: `cosine-epoch` (timm's cosine, updated once per epoch),
 * `cosine-step` (cosine updated every step) and `constant` (the base rate throughout).
 */
export const SCHEDULE_KINDS = ['cosine-epoch', 'cosine-step', 'constant'] as const;

const nonNegative = () => z.number().finite().min(0);

/**
 * The JSON options of `train`, with their defaults: the only place a training default lives. `train()` parses
 * its options through it, and the `peft` command line's `train.*` section is this schema (plus the protocol), so
 * both always agree. Defaults suit a run of any length; the SHIP recipe (100 epochs, batch 64, 10 warm-up
 * epochs) comes with the `vtab:<task>` presets.
 */
export const TRAIN_OPTIONS = z.strictObject({
  epochs: z.int().positive().default(100).describe('epochs (the cosine t_initial)'),
  stopAfterEpochs: z
    .int()
    .positive()
    .nullable()
    .default(null)
    .describe('stop after this many epochs of the epochs-long schedule (a later run can resume); null: all'),
  batchSize: z.int().positive().default(64).describe('examples per optimizer step'),
  microBatch: z
    .int()
    .positive()
    .nullable()
    .default(null)
    .describe('examples per forward/backward pass (gradient accumulation); null: the whole batch'),
  optimizer: z.enum(OPTIMIZER_KINDS).default('adamw').describe('optimizer'),
  lr: nonNegative().default(1e-3).describe('peak learning rate'),
  weightDecay: nonNegative()
    .default(1e-3)
    .describe(
      'weight decay (decoupled for AdamW, L2 for SGD); never on biases, norms, position/class embeddings',
    ),
  momentum: z.number().min(0).max(1).default(0.9).describe('SGD momentum'),
  nesterov: z.boolean().default(false).describe('SGD: Nesterov momentum (needs momentum > 0)'),
  betas: z
    .tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)])
    .default([0.9, 0.999])
    .describe("AdamW's β₁ and β₂"),
  eps: z.number().positive().default(1e-8).describe("AdamW's ε"),
  schedule: z
    .enum(SCHEDULE_KINDS)
    .default('cosine-epoch')
    .describe('learning-rate schedule (timm cosine stepped per epoch, per step, or constant)'),
  warmupEpochs: z.int().nonnegative().default(0).describe('epochs of linear warm-up from warmupLrInit'),
  warmupLrInit: nonNegative().default(1e-6).describe('learning rate at the start of the warm-up'),
  lrMin: nonNegative().default(1e-5).describe('floor of the cosine schedules'),
  seed: z.union([z.number().finite(), z.string()]).default(1).describe('seed of the batch order'),
  dropLast: z
    .boolean()
    .default(false)
    .describe(
      'skip a final partial batch each epoch (timm does); off: every image trains every epoch, the last step on fewer',
    ),
  evalEvery: z.int().positive().default(1).describe('evaluate at epochs 0, N, 2N, … and the last'),
  evalBatchSize: z
    .int()
    .positive()
    .nullable()
    .default(null)
    .describe('examples per evaluation forward; null: batchSize'),
  selection: z
    .enum(SELECTIONS)
    .default('val')
    .describe(
      "how the reported epoch is chosen; 'max-test-over-epochs' reproduces the official SHIP code (optimistic)",
    ),
  restoreBest: z
    .boolean()
    .default(true)
    .describe("with 'val' selection, leave the best-validation parameters in the model at the end"),
  checkpointEvery: z
    .int()
    .positive()
    .default(1)
    .describe('save a checkpoint every N epochs and after the last (needs a checkpoint folder)'),
  resume: z.boolean().default(false).describe('continue bit-identically from the checkpoint folder'),
});

/** `train`'s JSON options after parsing: every default filled in, in schema order. */
export type ResolvedTrainOptions = z.output<typeof TRAIN_OPTIONS>;
