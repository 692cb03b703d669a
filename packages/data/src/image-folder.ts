import type { Dirent } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { PeftError } from '@peftjs/core';
import type { LabeledSample, Split } from './split.js';

/** File extensions (lower-case, without the dot) treated as images. */
export const IMAGE_EXTENSIONS: readonly string[] = [
  'png',
  'jpg',
  'jpeg',
  'webp',
  'gif',
  'bmp',
  'tif',
  'tiff',
];

/** A split read by `readImageFolder`: labels index `classes`. */
export interface ImageFolderSplit extends Split {
  /** Class names in label order: `classes[label]` is the folder of that label. */
  readonly classes: readonly string[];
  /** Number of class folders (`classes.length`). */
  readonly numClasses: number;
}

// Code-unit order, as Python's sorted() (torchvision's ImageFolder): independent of the machine's locale.
const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Options of `readImageFolder`. */
export interface ReadImageFolderOptions {
  /**
   * Label this folder with another split's classes (normally the training split's), so that a class has the same
   * label in every split. A class folder missing here is fine; one that `labelsFrom` lacks is an error naming it.
   */
  readonly labelsFrom?: ImageFolderSplit;
}

/**
 * Reads a torchvision-style ImageFolder: every subfolder of `dir` is a class (label = index in the sorted folder
 * names, or in `options.labelsFrom.classes`), and every image file below it (searched recursively, sorted) is a
 * sample. Names starting with a dot are skipped: `.ipynb_checkpoints` is no class and macOS `._x.jpg` files are no
 * images.
 *
 * Symlinks are followed, to files and to folders, but every real folder (by `realpath`) is walked once: a link
 * back to a folder above it (a loop) or a second link to a folder already walked is an error naming both paths,
 * never a silent multiplication of samples. Entries with an image extension that are not regular files (FIFOs,
 * devices, dangling links) are listed so that `checkSplit` reports them; decoding never opens them.
 */
export async function readImageFolder(
  dir: string,
  options: ReadImageFolderOptions = {},
): Promise<ImageFolderSplit> {
  const root = resolve(dir);
  const entries = await listDir(root);
  const found: string[] = [];
  for (const entry of entries) {
    if (!entry.name.startsWith('.') && (await isDirectory(entry, join(root, entry.name))))
      found.push(entry.name);
  }
  found.sort(byCodeUnit);
  if (found.length === 0) {
    throw new PeftError('INVALID_CONFIG', `image folder ${root} has no class subfolders`);
  }
  const from = options.labelsFrom;
  const classes = from ? [...from.classes] : found;
  if (from) {
    const unknown = found.filter((name) => !from.classes.includes(name));
    if (unknown.length > 0) {
      throw new PeftError(
        'INVALID_CONFIG',
        `image folder ${root}: class folder${unknown.length === 1 ? '' : 's'} ${unknown.map((n) => `"${n}"`).join(', ')} ` +
          `not among the ${from.classes.length} classes of split "${from.name}" (${from.classes.join(', ')}); ` +
          `every split is labelled with the classes of "${from.name}", so it needs that folder too`,
      );
    }
  }
  const walk: Walk = { ancestors: [await realpath(root)], seen: new Map() };
  const samples: LabeledSample[] = [];
  for (const name of found) {
    const classDir = join(root, name);
    const files = await imagesBelow(classDir, walk);
    if (files.length === 0) {
      throw new PeftError(
        'INVALID_CONFIG',
        `image folder ${root}: class folder "${name}" contains no image files (${IMAGE_EXTENSIONS.join(', ')})`,
      );
    }
    const label = classes.indexOf(name);
    for (const path of files) samples.push({ path, label });
  }
  return { name: basename(root), samples, numClasses: classes.length, classes };
}

/** The state of one folder walk: real paths of the folders above, and every real folder walked so far. */
interface Walk {
  readonly ancestors: string[];
  readonly seen: Map<string, string>;
}

/** Enters `dir` unless it is a loop or a folder already walked (both errors naming the paths). */
async function enter(dir: string, walk: Walk): Promise<string> {
  const real = await realpath(dir);
  if (walk.ancestors.includes(real)) {
    throw new PeftError(
      'INVALID_CONFIG',
      `image folder: ${dir} is a symlink loop (it leads back to ${real}, a folder above it); remove the link`,
    );
  }
  const first = walk.seen.get(real);
  if (first !== undefined) {
    throw new PeftError(
      'INVALID_CONFIG',
      `image folder: ${dir} is the same folder as ${first} (reached twice through symlinks), so its images would be listed twice`,
    );
  }
  walk.seen.set(real, dir);
  return real;
}

async function listDir(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw new PeftError('IO_FAILED', `cannot read folder ${dir}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

async function imagesBelow(dir: string, walk: Walk): Promise<string[]> {
  walk.ancestors.push(await enter(dir, walk));
  const out: string[] = [];
  const entries = (await listDir(dir)).sort((a, b) => byCodeUnit(a.name, b.name));
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (await isDirectory(entry, path)) out.push(...(await imagesBelow(path, walk)));
    else if (IMAGE_EXTENSIONS.includes(extname(entry.name).slice(1).toLowerCase())) out.push(path);
  }
  walk.ancestors.pop();
  return out;
}

async function isDirectory(entry: Dirent, path: string): Promise<boolean> {
  if (!entry.isSymbolicLink()) return entry.isDirectory();
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false; // a dangling link: treated as a file, so checks report it as missing
  }
}
