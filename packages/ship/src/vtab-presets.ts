import { type MethodPreset, PeftError, didYouMean } from '@peftjs/core';

/**
 * Per-task SHIP settings behind the published VTAB-1k numbers (docs/ship-method.md §8.3, decoded from the
 * official run paths), with the hierarchy each τ produced on ViT-B/16 in21k features for reference.
 */
export type VtabGroup = 'natural' | 'specialized' | 'structured';

/** SHIP's published setting for one VTAB-1k task. */
export interface ShipVtabPreset {
  /** VTAB-1k task name (the key in `SHIP_VTAB_PRESETS`). */
  readonly task: string;
  /** The task's VTAB group. */
  readonly group: VtabGroup;
  /** Number of classes of the task. */
  readonly numClasses: number;
  /** Grouping threshold τ. */
  readonly threshold: number;
  /** SIP length K. */
  readonly promptLength: number;
  /** Published learning rate (see `lrWarning`). */
  readonly lr: number;
  /** Published weight decay. */
  readonly weightDecay: number;
  /** Hierarchy starts the official run used (depends on the backbone's features; informative only). */
  readonly publishedStarts: readonly number[];
  /** Test top-1 the official run reported (max over epochs, single seed). */
  readonly publishedTop1: number;
  /**
   * Set when the published learning rate is implausible for AdamW on prompts + head: it comes from an unreleased
   * earlier code version whose optimizer is unknown. Sweep {1e-3, 5e-3, 1e-2} instead of copying it.
   */
  readonly lrWarning?: string;
}

const IMPLAUSIBLE =
  'published lr comes from an unreleased code version with an unknown optimizer; with AdamW sweep 1e-3, 5e-3, 1e-2';

const rows: [string, VtabGroup, number, number, number, number, number, number[], number][] = [
  ['cifar100', 'natural', 100, 0.001, 0.001, 0.93, 50, [0, 2, 4, 6, 8, 11], 76.63],
  ['caltech101', 'natural', 102, 0.001, 0.0, 0.95, 200, [0, 2, 3, 5, 7, 9, 10, 11], 90.78],
  ['dtd', 'natural', 47, 0.001, 0.001, 0.98, 50, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 73.94],
  ['oxford_flowers102', 'natural', 102, 0.001, 0.0001, 0.95, 100, [0, 2, 4, 6, 8, 10, 11], 99.35],
  ['oxford_pet', 'natural', 37, 0.001, 0.01, 0.97, 5, [0, 2, 3, 4, 5, 6, 7, 9, 10, 11], 92.01],
  ['svhn', 'natural', 10, 0.25, 0.01, 0.97, 50, [0, 2, 3, 4, 5, 6, 8, 10, 11], 87.66],
  ['sun397', 'natural', 397, 0.001, 0.0001, 0.95, 10, [0, 2, 4, 6, 8, 10, 11], 57.72],
  ['patch_camelyon', 'specialized', 2, 0.001, 0.001, 0.98, 30, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 87.16],
  ['eurosat', 'specialized', 10, 0.05, 0.0, 0.97, 50, [0, 2, 3, 4, 5, 6, 7, 9, 11], 96.61],
  ['resisc45', 'specialized', 45, 0.05, 0.001, 0.98, 30, [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 86.41],
  ['diabetic_retinopathy', 'specialized', 5, 1.0, 0.01, 0.96, 50, [0, 2, 3, 4, 5, 6, 7, 9, 10, 11], 76.34],
  ['clevr_count', 'structured', 8, 0.001, 0.0, 0.97, 50, [0, 2, 3, 4, 5, 6, 7, 8, 10, 11], 79.21],
  ['clevr_dist', 'structured', 6, 0.001, 0.01, 0.95, 50, [0, 2, 4, 6, 8, 10, 11], 64.09],
  ['dmlab', 'structured', 6, 0.001, 0.0001, 0.95, 200, [0, 3, 5, 6, 8, 10, 11], 51.23],
  ['kitti', 'structured', 4, 0.05, 0.001, 0.97, 50, [0, 2, 3, 4, 5, 6, 7, 8, 10, 11], 81.15],
  ['dsprites_loc', 'structured', 16, 0.001, 0.0001, 0.98, 200, [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11], 83.61],
  ['dsprites_ori', 'structured', 16, 0.05, 0.001, 0.95, 30, [0, 2, 3, 4, 5, 6, 8, 11], 53.89],
  ['smallnorb_azi', 'structured', 18, 0.001, 0.0001, 0.98, 50, [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 33.05],
  ['smallnorb_ele', 'structured', 9, 0.001, 0.0, 0.96, 50, [0, 2, 3, 4, 5, 7, 9, 10, 11], 45.98],
];

/** SHIP's per-task settings for the 19 VTAB-1k tasks, keyed by task name (frozen). */
export const SHIP_VTAB_PRESETS: Readonly<Record<string, ShipVtabPreset>> = Object.freeze(
  Object.fromEntries(
    rows.map(
      ([
        task,
        group,
        numClasses,
        lr,
        weightDecay,
        threshold,
        promptLength,
        publishedStarts,
        publishedTop1,
      ]) => [
        task,
        Object.freeze({
          task,
          group,
          numClasses,
          threshold,
          promptLength,
          lr,
          weightDecay,
          publishedStarts: Object.freeze(publishedStarts),
          publishedTop1,
          ...(lr > 0.01 ? { lrWarning: IMPLAUSIBLE } : {}),
        }),
      ],
    ),
  ),
);

/** The preset of a VTAB-1k task, or an `INVALID_OPTION` error with a did-you-mean listing the 19 task names. */
export function shipVtabPreset(task: string): ShipVtabPreset {
  const preset = SHIP_VTAB_PRESETS[task];
  if (!preset) {
    const tasks = Object.keys(SHIP_VTAB_PRESETS);
    throw new PeftError(
      'INVALID_OPTION',
      `unknown VTAB-1k task "${task}"${didYouMean(task, tasks)}; known: ${tasks.join(', ')}`,
    );
  }
  return preset;
}

/**
 * The recipe of every official SHIP VTAB-1k run (docs/ship-method.md §8.2): 100 epochs of batch 64 with a 10-epoch
 * warm-up (AdamW, the timm cosine stepped per epoch, warm-up from 1e-6 and floor 1e-5 are `train()`'s defaults).
 */
const SHIP_VTAB_RECIPE = Object.freeze({ epochs: 100, batchSize: 64, warmupEpochs: 10 });

/**
 * `SHIP_VTAB_PRESETS` as method presets keyed `vtab:<task>` (`peft train --preset vtab:cifar100`): τ and K as
 * method options; lr, weight decay and `SHIP_VTAB_RECIPE` as training options; the implausible learning rates
 * carry their warning.
 */
export const SHIP_METHOD_PRESETS: Readonly<Record<string, MethodPreset>> = Object.freeze(
  Object.fromEntries(
    Object.values(SHIP_VTAB_PRESETS).map((p) => [
      `vtab:${p.task}`,
      {
        description: `SHIP's published VTAB-1k setting for ${p.task} (${p.group}; test top-1 ${p.publishedTop1} %)`,
        options: { threshold: p.threshold, promptLength: p.promptLength },
        train: { ...SHIP_VTAB_RECIPE, lr: p.lr, weightDecay: p.weightDecay },
        warnings: p.lrWarning ? [`lr ${p.lr}: ${p.lrWarning}`] : [],
      },
    ]),
  ),
);
