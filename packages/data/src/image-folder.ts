import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
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

/**
 * Reads a torchvision-style ImageFolder: every subfolder of `dir` is a class (label = index in the sorted folder
 * names), and every image file below it (searched recursively, sorted, symlinks followed) is a sample. Names
 * starting with a dot are skipped: `.ipynb_checkpoints` is no class and macOS `._x.jpg` files are no images.
 */
export async function readImageFolder(dir: string): Promise<ImageFolderSplit> {
  const root = resolve(dir);
  const entries = await listDir(root);
  const classes: string[] = [];
  for (const entry of entries) {
    if (!entry.name.startsWith('.') && (await isDirectory(entry, join(root, entry.name))))
      classes.push(entry.name);
  }
  classes.sort(byCodeUnit);
  if (classes.length === 0) {
    throw new PeftError('INVALID_CONFIG', `image folder ${root} has no class subfolders`);
  }
  const samples: LabeledSample[] = [];
  for (const [label, name] of classes.entries()) {
    const classDir = join(root, name);
    const files = await imagesBelow(classDir);
    if (files.length === 0) {
      throw new PeftError(
        'INVALID_CONFIG',
        `image folder ${root}: class folder "${name}" contains no image files (${IMAGE_EXTENSIONS.join(', ')})`,
      );
    }
    for (const path of files) samples.push({ path, label });
  }
  return { name: basename(root), samples, numClasses: classes.length, classes };
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

async function imagesBelow(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = (await listDir(dir)).sort((a, b) => byCodeUnit(a.name, b.name));
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (await isDirectory(entry, path)) out.push(...(await imagesBelow(path)));
    else if (IMAGE_EXTENSIONS.includes(extname(entry.name).slice(1).toLowerCase())) out.push(path);
  }
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
