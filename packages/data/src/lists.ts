import { basename, extname, isAbsolute, resolve } from 'node:path';
import { invalidOption } from '@peftjs/core';
import { inferClassCount } from './classes.js';
import { readInputFile } from './files.js';
import { type InputLimits, resolveLimits } from './limits.js';
import type { DataProblem, LabeledSample, Split } from './split.js';

/**
 * The three VTAB-1k task groups: `natural` (everyday photos), `specialized` (medical and remote-sensing
 * imagery) and `structured` (scene structure: counting, distance, position, orientation).
 */
export type VtabGroup = 'natural' | 'specialized' | 'structured';

/** Class count and group of one VTAB-1k task. */
export interface VtabTaskInfo {
  /** Number of classes of the task. */
  readonly numClasses: number;
  /** The group the task is averaged in. */
  readonly group: VtabGroup;
}

/** The 19 VTAB-1k tasks in the usual reporting order, with their class counts and groups. */
export const VTAB_TASKS = {
  /** CIFAR-100 object categories. */
  cifar100: { numClasses: 100, group: 'natural' },
  /** Caltech-101 object categories (101 + background). */
  caltech101: { numClasses: 102, group: 'natural' },
  /** Describable Textures Dataset. */
  dtd: { numClasses: 47, group: 'natural' },
  /** Oxford 102 Flowers species. */
  oxford_flowers102: { numClasses: 102, group: 'natural' },
  /** Oxford-IIIT Pet breeds. */
  oxford_pet: { numClasses: 37, group: 'natural' },
  /** Street View House Numbers digits. */
  svhn: { numClasses: 10, group: 'natural' },
  /** SUN397 scene categories. */
  sun397: { numClasses: 397, group: 'natural' },
  /** PatchCamelyon: whether a histopathology patch contains metastatic tissue. */
  patch_camelyon: { numClasses: 2, group: 'specialized' },
  /** EuroSAT Sentinel-2 land-use classes. */
  eurosat: { numClasses: 10, group: 'specialized' },
  /** RESISC45 remote-sensing scene classes. */
  resisc45: { numClasses: 45, group: 'specialized' },
  /** Diabetic retinopathy severity grades (0–4) of retina photographs. */
  diabetic_retinopathy: { numClasses: 5, group: 'specialized' },
  /** CLEVR: number of objects in the scene (3–10). */
  clevr_count: { numClasses: 8, group: 'structured' },
  /** CLEVR: distance to the closest object, in bins. */
  clevr_dist: { numClasses: 6, group: 'structured' },
  /** DeepMind Lab frames: how far the nearest object is and whether it is a reward. */
  dmlab: { numClasses: 6, group: 'structured' },
  /** KITTI: distance to the closest vehicle, in bins. */
  kitti: { numClasses: 4, group: 'structured' },
  /** dSprites: horizontal position of the sprite, in bins. */
  dsprites_loc: { numClasses: 16, group: 'structured' },
  /** dSprites: orientation of the sprite, in bins. */
  dsprites_ori: { numClasses: 16, group: 'structured' },
  /** smallNORB: camera azimuth, in bins. */
  smallnorb_azi: { numClasses: 18, group: 'structured' },
  /** smallNORB: camera elevation, in bins. */
  smallnorb_ele: { numClasses: 9, group: 'structured' },
} as const satisfies Record<string, VtabTaskInfo>;

/** Name of one of the 19 VTAB-1k tasks (a key of `VTAB_TASKS`). */
export type VtabTaskName = keyof typeof VTAB_TASKS;

/** Whether `name` is one of the 19 VTAB-1k task names in `VTAB_TASKS`. */
export function isVtabTask(name: string): name is VtabTaskName {
  return Object.hasOwn(VTAB_TASKS, name);
}

/**
 * The four list files of a VTAB-1k task: 800 train and 200 validation images, their union (the usual training
 * set) and the test set.
 */
export const VTAB_SPLITS = ['train800', 'val200', 'train800val200', 'test'] as const;
/** Name of one VTAB-1k list file (without `.txt`). */
export type VtabSplitName = (typeof VTAB_SPLITS)[number];

/** One VTAB-1k task as read by `readVtabTask`. */
export interface VtabTask {
  /** The task folder name. */
  readonly task: string;
  /**
   * Class count of every split: the `numClasses` option, else `VTAB_TASKS`, else the largest label + 1 (checked:
   * see `inferClassCount`).
   */
  readonly numClasses: number;
  /** The four splits by name, each carrying `numClasses`. */
  readonly splits: Record<VtabSplitName, Split>;
}

/** Options of `readListFile`. */
export interface ReadListOptions {
  /** Folder the listed paths are relative to (default: the list file's folder). */
  readonly baseDir?: string;
  /**
   * Class count recorded on the split (a positive integer, else `INVALID_OPTION`); labels are checked against
   * it later by `checkSplit`, not here.
   */
  readonly numClasses?: number;
  /** Split name (default: the file name without its extension). */
  readonly name?: string;
  /** Size limits (default `DEFAULT_INPUT_LIMITS`): the list file must be a regular file within `maxFileBytes`. */
  readonly limits?: Partial<InputLimits>;
}

const INTEGER = /^-?\d+$/;

/**
 * Parses one `relative/path label` list file. Blank lines are skipped; a line that is not exactly two fields or
 * whose label is not an integer becomes an entry of `rejected` (reported by `checkSplit`) rather than an error, so
 * that one run of the checks can list every problem at once.
 */
export async function readListFile(path: string, options: ReadListOptions = {}): Promise<Split> {
  const file = resolve(path);
  const baseDir = resolve(options.baseDir ?? resolve(file, '..'));
  if (options.numClasses !== undefined && !(Number.isInteger(options.numClasses) && options.numClasses > 0)) {
    invalidOption('numClasses', options.numClasses, 'a positive integer');
  }
  const { maxFileBytes } = resolveLimits(options.limits);
  const text = (await readInputFile(file, 'list file', maxFileBytes, 'maxFileBytes')).toString('utf8');
  const samples: LabeledSample[] = [];
  const rejected: DataProblem[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const content = (lines[i] as string).trim();
    if (content === '') continue;
    const line = i + 1;
    const fields = content.split(/\s+/);
    if (fields.length !== 2) {
      rejected.push({
        file,
        line,
        message: `malformed line, expected "path label" but got ${fields.length} fields: ${JSON.stringify(content)}`,
      });
      continue;
    }
    const [relPath, labelText] = fields as [string, string];
    if (!INTEGER.test(labelText)) {
      rejected.push({ file, line, message: `label ${JSON.stringify(labelText)} is not an integer` });
      continue;
    }
    const imagePath = isAbsolute(relPath) ? relPath : resolve(baseDir, relPath);
    samples.push({ path: imagePath, label: Number(labelText), source: { file, line } });
  }
  const name = options.name ?? basename(file, extname(file));
  return {
    name,
    file,
    samples,
    rejected,
    ...(options.numClasses !== undefined ? { numClasses: options.numClasses } : {}),
  };
}

/**
 * Reads a task of the VTAB-1k list layout used by NOAH/SSF/SHIP: `<root>/<task>/{train800,val200,
 * train800val200,test}.txt`, paths relative to `<root>/<task>/`. Known tasks take their class count from
 * `VTAB_TASKS`; other (custom) tasks use `numClasses`, else the largest label over all four lists plus one,
 * refused (naming the label's file and line) when a typo is the likelier reason: see `inferClassCount`.
 */
export async function readVtabTask(
  root: string,
  task: string,
  options: { numClasses?: number; limits?: Partial<InputLimits> } = {},
): Promise<VtabTask> {
  if (task === '' || task === '.' || task === '..' || /[/\\]/.test(task)) {
    invalidOption('task', task, 'a task folder name (no path separators)');
  }
  const taskDir = resolve(root, task);
  const known = isVtabTask(task) ? VTAB_TASKS[task].numClasses : undefined;
  const given = options.numClasses ?? known;
  const read = await Promise.all(
    VTAB_SPLITS.map((name) =>
      readListFile(resolve(taskDir, `${name}.txt`), {
        baseDir: taskDir,
        name,
        ...(given !== undefined ? { numClasses: given } : {}),
        ...(options.limits !== undefined ? { limits: options.limits } : {}),
      }),
    ),
  );
  const numClasses = given ?? inferNumClasses(read, `VTAB task "${task}" in ${taskDir}`);
  const [train800, val200, train800val200, test] = read.map((split) => ({ ...split, numClasses })) as [
    Split,
    Split,
    Split,
    Split,
  ];
  return { task, numClasses, splits: { train800, val200, train800val200, test } };
}

/** Largest label over the splits plus one (custom tasks without a declared class count), checked. */
function inferNumClasses(splits: readonly Split[], what: string): number {
  const samples = splits.flatMap((split) => split.samples);
  return inferClassCount(
    samples.map((s) => s.label),
    (i) => {
      const source = samples[i]?.source;
      return source ? `${source.file}:${source.line}` : (samples[i]?.path ?? '?');
    },
    what,
  );
}
