import { join } from 'node:path';
import {
  type DataProblem,
  type IdxDataset,
  ImageDataset,
  type InputLimits,
  type Split,
  VTAB_TASKS,
  checkIdxDataset,
  checkSplit,
  idxDataset,
  readImageFolder,
  readVtabTask,
} from '@peftjs/data';
import type { VitConfig } from '@peftjs/core';
import { UsageError } from './config.js';
import type { RunConfig } from './options.js';
import type { Progress } from './progress.js';

/**
 * The splits of a run. `select`/`val` train and score the choice of epochs (VTAB-1k: train800 / val200);
 * `trainval` is the final fit (train800val200); `test` is evaluated once.
 */
export interface RunData {
  readonly numClasses: number;
  readonly select: ImageDataset;
  readonly val: ImageDataset;
  readonly trainval: ImageDataset;
  readonly test: ImageDataset;
  /** The list-based splits, for `peft data check` (empty for IDX data, which has no files per image). */
  readonly lists: readonly Split[];
  readonly description: Record<string, unknown>;
}

function subsetIdx(data: IdxDataset, start: number, end: number): IdxDataset {
  const pixels = data.height * data.width;
  return {
    ...data,
    count: end - start,
    images: data.images.subarray(start * pixels, end * pixels),
    labels: data.labels.subarray(start, end),
  };
}

/** The run's input limits in bytes and pixels (the config states sizes in MB; see options.ts). */
export function inputLimits(config: RunConfig): InputLimits {
  const mb = (value: number) => Math.max(1, Math.floor(value * 2 ** 20));
  return {
    maxImagePixels: config.data.maxImagePixels,
    maxFileBytes: mb(config.data.maxFileMb),
    maxIdxBytes: mb(config.data.maxIdxMb),
  };
}

function requireOption(value: string | undefined, option: string): string {
  if (!value) throw new UsageError(`option "${option}" is required for this data format`);
  return value;
}

export interface RunSplits {
  readonly numClasses: number;
  readonly sources: Record<'select' | 'val' | 'trainval' | 'test', Split | IdxDataset>;
  readonly lists: readonly Split[];
  /** Class names in label order, when the data has them (image folders: the training split's folders). */
  readonly classNames?: readonly string[];
}

/** Reads the split lists (no image is decoded, nothing is validated beyond parsing). */
export async function readRunSplits(config: RunConfig, model: VitConfig): Promise<RunSplits> {
  const { data } = config;
  const root = requireOption(data.root, 'data.root');
  if (model.channels !== 1 && model.channels !== 3) {
    throw new UsageError(`the model has ${model.channels} input channels; data loading supports 1 or 3`);
  }
  let splits: {
    select: Split | IdxDataset;
    val: Split | IdxDataset;
    trainval: Split | IdxDataset;
    test: Split | IdxDataset;
  };
  let lists: Split[] = [];
  let numClasses: number;
  let classNames: readonly string[] | undefined;
  const limits = inputLimits(config);
  const given = data.numClasses !== undefined ? { numClasses: data.numClasses } : {};
  if (data.format === 'vtab') {
    const task = requireOption(data.task, 'data.task');
    const known = (VTAB_TASKS as Record<string, { numClasses: number }>)[task];
    const read = await readVtabTask(root, task, { ...given, limits });
    numClasses = data.numClasses ?? known?.numClasses ?? read.numClasses;
    splits = {
      select: read.splits.train800,
      val: read.splits.val200,
      trainval: read.splits.train800val200,
      test: read.splits.test,
    };
    lists = [read.splits.train800, read.splits.val200, read.splits.train800val200, read.splits.test];
  } else if (data.format === 'imagefolder') {
    // Every split is labelled with the training split's classes (a class only val/test has is an error).
    const train = await readImageFolder(join(root, 'train'));
    const val = await readImageFolder(join(root, 'val'), { labelsFrom: train });
    const test = await readImageFolder(join(root, 'test'), { labelsFrom: train });
    numClasses = data.numClasses ?? train.classes.length;
    const trainval: Split = { name: 'train+val', samples: [...train.samples, ...val.samples], numClasses };
    splits = { select: train, val, trainval, test };
    lists = [train, val, test];
    classNames = train.classes;
  } else {
    const idxOptions = { ...given, limits };
    const train = await idxDataset(join(root, data.trainImages), join(root, data.trainLabels), idxOptions);
    const test = await idxDataset(join(root, data.testImages), join(root, data.testLabels), idxOptions);
    numClasses = data.numClasses ?? Math.max(train.numClasses, test.numClasses);
    // IDX files have no validation split: the last 10 % of the training file is held out for selection.
    const cut = Math.floor(train.count * 0.9);
    splits = {
      select: subsetIdx(train, 0, cut),
      val: subsetIdx(train, cut, train.count),
      trainval: train,
      test,
    };
  }
  return { numClasses, sources: splits, lists, ...(classNames ? { classNames } : {}) };
}

/** Datasets over already-checked splits. */
export function buildRunData(config: RunConfig, model: VitConfig, splits: RunSplits): RunData {
  const { data } = config;
  const numClasses = splits.numClasses;
  const datasetOptions = {
    imageSize: model.imageSize,
    channels: model.channels as 1 | 3,
    normalization: data.normalization,
    cacheBytes: data.cacheMb * 2 ** 20,
    limits: inputLimits(config),
  };
  const make = (source: Split | IdxDataset) => new ImageDataset(source, { ...datasetOptions, numClasses });
  const select = make(splits.sources.select);
  const trainval = make(splits.sources.trainval);
  return {
    numClasses,
    select,
    val: make(splits.sources.val),
    trainval,
    test: make(splits.sources.test),
    lists: splits.lists,
    description: {
      format: data.format,
      root: data.root,
      task: data.task ?? null,
      ...trainval.describe(),
      numClasses,
    },
  };
}

/**
 * Checks every split: list splits (files exist and decode, labels in range, no duplicates, not empty), IDX labels;
 * with `progress`, each split is a phase (a bar on a terminal).
 */
export async function checkRunSplits(
  config: RunConfig,
  model: VitConfig,
  data: RunSplits,
  progress?: Progress,
): Promise<DataProblem[]> {
  const problems: DataProblem[] = [];
  for (const split of data.lists) {
    const check = (onProgress?: (done: number, total: number) => void) =>
      checkSplit(split, {
        numClasses: data.numClasses,
        decode: true,
        imageSize: model.imageSize,
        channels: model.channels as 1 | 3,
        limits: inputLimits(config),
        ...(onProgress ? { onProgress } : {}),
      });
    const result = progress
      ? await progress.timed(
          `checking ${split.file ?? split.name} (${split.samples.length} images)`,
          (phase) => check((done, total) => phase.tick(done, total)),
          (r) => (r.ok ? 'ok' : `${r.problems.length} problem(s)`),
        )
      : await check();
    problems.push(...result.problems);
  }
  if (config.data.format === 'idx') {
    // trainval is the whole training file (select and val are its parts); IDX files cannot be empty (idxDataset).
    for (const idx of [data.sources.trainval, data.sources.test] as IdxDataset[]) {
      problems.push(...checkIdxDataset(idx, { numClasses: data.numClasses }).problems);
    }
  }
  return problems;
}
