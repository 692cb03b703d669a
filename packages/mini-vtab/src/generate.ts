import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { PeftError, Rng, type Seed } from '@peftjs/core';
import sharp from 'sharp';
import { PROCEDURAL_TASKS, type ProceduralTask } from './tasks.js';

/** VTAB-1k split sizes: 800 + 200 for training and selection, a disjoint test split. */
export interface SplitCounts {
  /** Images in the training list. */
  readonly train800: number;
  /** Images in the validation list (`train800val200.txt` lists both). */
  readonly val200: number;
  /** Images in the test list. */
  readonly test: number;
}

/** The VTAB-1k sizes: 800 / 200 and a 1000-image test split (the real VTAB test splits are larger). */
export const VTAB_COUNTS: SplitCounts = { train800: 800, val200: 200, test: 1000 };

/** Options of `generateTask`. */
export interface GenerateOptions {
  /** Folder receiving `<task>/` (the VTAB-1k list layout). */
  readonly root: string;
  /** Seed of the image selection, order and rendering (default 0); the same seed writes the same files. */
  readonly seed?: Seed;
  /**
   * Split sizes (default `VTAB_COUNTS`); optdigits and fashion are capped by what their source files hold.
   */
  readonly counts?: SplitCounts;
  /** Image side in pixels (default 32). */
  readonly size?: number;
}

/** A mini-VTAB task, as listed in `MINI_VTAB_TASKS` and written to its `task.json`. */
export interface TaskInfo {
  /** Task name: its folder under `root` and the argument of `generateTask`. */
  readonly name: string;
  /** The VTAB group the task stands in for. */
  readonly group: 'natural' | 'specialized' | 'structured';
  /** Number of classes; labels are 0 … numClasses − 1. */
  readonly numClasses: number;
  /** What the images show and what the label means. */
  readonly description: string;
  /** Where the images come from: a Debian package path, or `procedural, from the seed`. */
  readonly source: string;
}

/** Every task this package can produce, with where its images come from. */
export const MINI_VTAB_TASKS: readonly TaskInfo[] = [
  {
    name: 'optdigits',
    group: 'natural',
    numClasses: 10,
    description: 'UCI optdigits (8×8, 17 grey levels), upscaled',
    source: 'Debian python3-sklearn: sklearn/datasets/data/digits.csv.gz',
  },
  {
    name: 'fashion',
    group: 'natural',
    numClasses: 10,
    description: 'Fashion-MNIST clothing',
    source: 'Debian dataset-fashion-mnist: /usr/share/datasets/fashion-mnist',
  },
  ...PROCEDURAL_TASKS.map((t) => ({
    name: t.name,
    group: t.group,
    numClasses: t.numClasses,
    description: t.description,
    source: 'procedural, from the seed',
  })),
];

interface Labelled {
  readonly pixels: Uint8Array;
  readonly channels: 1 | 3;
  readonly side: number;
  readonly label: number;
}

/**
 * Writes one task atomically: images and the four list files go to a temporary folder renamed into place at the
 * end, so an interrupted run never leaves a half-written task.
 */
async function writeTask(
  root: string,
  name: string,
  splits: Record<'train800' | 'val200' | 'test', Labelled[]>,
  size: number,
): Promise<string> {
  const final = join(root, name);
  const temp = join(root, `.${name}.tmp-${process.pid}`);
  await rm(temp, { recursive: true, force: true });
  const lists: Record<string, string[]> = { train800: [], val200: [], test: [] };
  for (const [split, items] of Object.entries(splits)) {
    await mkdir(join(temp, 'images', split), { recursive: true });
    for (const [i, item] of items.entries()) {
      const path = `images/${split}/${i}.png`;
      await sharp(item.pixels, { raw: { width: item.side, height: item.side, channels: item.channels } })
        .resize(size, size, { kernel: 'cubic' })
        .png()
        .toFile(join(temp, path));
      lists[split]?.push(`${path} ${item.label}`);
    }
  }
  const write = (file: string, rows: string[]) => writeFile(join(temp, file), `${rows.join('\n')}\n`);
  await write('train800.txt', lists.train800 ?? []);
  await write('val200.txt', lists.val200 ?? []);
  await write('train800val200.txt', [...(lists.train800 ?? []), ...(lists.val200 ?? [])]);
  await write('test.txt', lists.test ?? []);
  await rm(final, { recursive: true, force: true });
  await rename(temp, final);
  return final;
}

/** Balanced labels in a seeded order. */
function balancedLabels(rng: Rng, count: number, classes: number): number[] {
  return rng.shuffle(Array.from({ length: count }, (_, i) => i % classes));
}

function renderProcedural(task: ProceduralTask, seed: Seed, counts: SplitCounts, size: number) {
  const root = new Rng(seed).split(`mini-vtab:${task.name}`);
  const split = (name: keyof SplitCounts): Labelled[] => {
    const stream = root.split(name);
    return balancedLabels(stream.split('labels'), counts[name], task.numClasses).map((label, i) => {
      // Rendering at 2× and downsampling gives smoother edges than the 4×4 sub-samples alone.
      const canvas = task.render(stream.split(`image:${i}`), label, size * 2);
      return { pixels: canvas.toBytes(), channels: 3 as const, side: size * 2, label };
    });
  };
  return { train800: split('train800'), val200: split('val200'), test: split('test') };
}

/** Rows of `count` indices drawn without replacement, as a seeded permutation prefix. */
function pick(rng: Rng, total: number, count: number): number[] {
  return rng.permutation(total).slice(0, Math.min(count, total));
}

async function optdigits(seed: Seed, counts: SplitCounts, file: string) {
  if (!existsSync(file)) {
    throw new PeftError(
      'IO_FAILED',
      `optdigits needs ${file} (apt-get download python3-sklearn && dpkg-deb -x … to extract it)`,
    );
  }
  const rows = gunzipSync(await readFile(file))
    .toString('utf8')
    .trim()
    .split('\n');
  const items = rows.map((row, line) => {
    const values = row.split(',').map(Number);
    if (values.length !== 65 || values.some((v) => !Number.isFinite(v))) {
      throw new PeftError('IO_FAILED', `${file}:${line + 1}: expected 64 pixels and a label`);
    }
    const pixels = Uint8Array.from(values.slice(0, 64), (v) => Math.round((v / 16) * 255));
    return { pixels, channels: 1 as const, side: 8, label: values[64] as number };
  });
  const order = new Rng(seed).split('mini-vtab:optdigits').permutation(items.length);
  const take = (start: number, n: number) => order.slice(start, start + n).map((i) => items[i] as Labelled);
  const train = take(0, counts.train800);
  const val = take(counts.train800, counts.val200);
  const test = take(counts.train800 + counts.val200, counts.test);
  return { train800: train, val200: val, test };
}

async function fashion(seed: Seed, counts: SplitCounts, dir: string) {
  const read = async (name: string) => {
    const path = join(dir, name);
    if (!existsSync(path))
      throw new PeftError('IO_FAILED', `fashion needs ${path} (apt-get install dataset-fashion-mnist)`);
    return gunzipSync(await readFile(path));
  };
  const trainImages = await read('train-images-idx3-ubyte.gz');
  const trainLabels = await read('train-labels-idx1-ubyte.gz');
  const testImages = await read('t10k-images-idx3-ubyte.gz');
  const testLabels = await read('t10k-labels-idx1-ubyte.gz');
  const item = (images: Buffer, labels: Buffer, i: number): Labelled => ({
    pixels: new Uint8Array(images.subarray(16 + i * 784, 16 + (i + 1) * 784)),
    channels: 1,
    side: 28,
    label: labels[8 + i] as number,
  });
  const rng = new Rng(seed).split('mini-vtab:fashion');
  const trainIdx = pick(rng.split('train'), trainImages.readUInt32BE(4), counts.train800 + counts.val200);
  const testIdx = pick(rng.split('test'), testImages.readUInt32BE(4), counts.test);
  return {
    train800: trainIdx.slice(0, counts.train800).map((i) => item(trainImages, trainLabels, i)),
    val200: trainIdx.slice(counts.train800).map((i) => item(trainImages, trainLabels, i)),
    test: testIdx.map((i) => item(testImages, testLabels, i)),
  };
}

/** Where `generateTask` looks for the two dataset-backed tasks; override with `options.sources`. */
export const DEFAULT_SOURCES = {
  /** gzipped CSV of the sklearn digits (Debian `python3-sklearn`). */
  optdigits: '/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz',
  /** Folder holding Fashion-MNIST's four gzipped IDX files (Debian `dataset-fashion-mnist`). */
  fashion: '/usr/share/datasets/fashion-mnist',
};

/** Generates one task into `<root>/<task>/` in the VTAB-1k list layout and returns its folder. */
export async function generateTask(
  task: string,
  options: GenerateOptions & { sources?: Partial<typeof DEFAULT_SOURCES> },
): Promise<string> {
  const seed = options.seed ?? 0;
  const counts = options.counts ?? VTAB_COUNTS;
  const size = options.size ?? 32;
  await mkdir(options.root, { recursive: true });
  const procedural = PROCEDURAL_TASKS.find((t) => t.name === task);
  let splits: Record<'train800' | 'val200' | 'test', Labelled[]>;
  if (procedural) splits = renderProcedural(procedural, seed, counts, size);
  else if (task === 'optdigits')
    splits = await optdigits(seed, counts, options.sources?.optdigits ?? DEFAULT_SOURCES.optdigits);
  else if (task === 'fashion')
    splits = await fashion(seed, counts, options.sources?.fashion ?? DEFAULT_SOURCES.fashion);
  else {
    throw new PeftError(
      'INVALID_OPTION',
      `unknown mini-VTAB task "${task}"; known: ${MINI_VTAB_TASKS.map((t) => t.name).join(', ')}`,
    );
  }
  const folder = await writeTask(options.root, task, splits, size);
  await writeFile(
    join(folder, 'task.json'),
    `${JSON.stringify({ task, seed, counts, size, ...MINI_VTAB_TASKS.find((t) => t.name === task) }, null, 2)}\n`,
  );
  return folder;
}
