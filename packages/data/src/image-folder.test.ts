import { mkdir, realpath, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSplit } from './check.js';
import { readImageFolder } from './image-folder.js';
import { BLUE, GREEN, RED, makeFifo, tempDir, writeSolidPng } from './test-support.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterAll(() => cleanup());

describe('readImageFolder', () => {
  it('labels classes by sorted folder name and lists images recursively in sorted order', async () => {
    const root = join(dir, 'pets');
    await writeSolidPng(join(root, 'dog/b.png'), 2, RED);
    await writeSolidPng(join(root, 'dog/a.PNG'), 2, GREEN);
    await writeSolidPng(join(root, 'cat/nested/c.png'), 2, BLUE);
    await writeSolidPng(join(root, 'Zebra/z.png'), 2, BLUE);
    await writeFile(join(root, 'cat/notes.txt'), 'not an image');
    await writeFile(join(root, 'cat/._c.png'), 'AppleDouble');
    await mkdir(join(root, '.ipynb_checkpoints'), { recursive: true });
    await writeFile(join(root, 'README.md'), 'top-level files are no class');

    const split = await readImageFolder(root);
    expect(split.name).toBe('pets');
    expect(split.classes).toEqual(['Zebra', 'cat', 'dog']); // code-unit order: capitals first
    expect(split.numClasses).toBe(3);
    expect(split.samples).toEqual([
      { path: join(root, 'Zebra/z.png'), label: 0 },
      { path: join(root, 'cat/nested/c.png'), label: 1 },
      { path: join(root, 'dog/a.PNG'), label: 2 },
      { path: join(root, 'dog/b.png'), label: 2 },
    ]);
  });

  it('names an empty class folder and a folder without classes', async () => {
    await writeSolidPng(join(dir, 'gaps/full/x.png'), 2, RED);
    await mkdir(join(dir, 'gaps/empty'), { recursive: true });
    await expect(readImageFolder(join(dir, 'gaps'))).rejects.toThrow(
      /class folder "empty" contains no image files/,
    );
    await mkdir(join(dir, 'flat'), { recursive: true });
    await expect(readImageFolder(join(dir, 'flat'))).rejects.toThrow(/has no class subfolders/);
  });
});

describe('readImageFolder across splits', () => {
  it("labels every split with the training split's classes: a val/ without b/ keeps c at label 2", async () => {
    const root = join(dir, 'splits');
    for (const name of ['a', 'b', 'c']) await writeSolidPng(join(root, `train/${name}/x.png`), 2, RED);
    await writeSolidPng(join(root, 'val/a/v.png'), 2, GREEN);
    await writeSolidPng(join(root, 'val/c/v.png'), 2, BLUE);
    const train = await readImageFolder(join(root, 'train'));
    const val = await readImageFolder(join(root, 'val'), { labelsFrom: train });
    expect(val.classes).toEqual(['a', 'b', 'c']);
    expect(val.numClasses).toBe(3);
    expect(val.samples).toEqual([
      { path: join(root, 'val/a/v.png'), label: 0 },
      { path: join(root, 'val/c/v.png'), label: 2 },
    ]);
  });

  it('refuses a class folder that the training split lacks, naming it', async () => {
    const root = join(dir, 'extra');
    for (const name of ['a', 'b']) await writeSolidPng(join(root, `train/${name}/x.png`), 2, RED);
    for (const name of ['a', 'd']) await writeSolidPng(join(root, `test/${name}/x.png`), 2, RED);
    const train = await readImageFolder(join(root, 'train'));
    await expect(readImageFolder(join(root, 'test'), { labelsFrom: train })).rejects.toThrow(
      `image folder ${join(root, 'test')}: class folder "d" not among the 2 classes of split "train" (a, b); ` +
        'every split is labelled with the classes of "train", so it needs that folder too',
    );
  });
});

describe('readImageFolder and symlinks', () => {
  it('refuses a symlink loop inside a class folder instead of multiplying samples', async () => {
    const root = join(dir, 'looped');
    await writeSolidPng(join(root, 'a/x.png'), 2, RED);
    await symlink('.', join(root, 'a/again'));
    await expect(readImageFolder(root)).rejects.toThrow(
      `image folder: ${join(root, 'a/again')} is a symlink loop (it leads back to ${await realpath(join(root, 'a'))}, a folder above it); remove the link`,
    );
  });

  it('refuses a folder reached twice through symlinks', async () => {
    const root = join(dir, 'twice');
    await writeSolidPng(join(root, 'a/x.png'), 2, RED);
    await symlink(join(root, 'a'), join(root, 'b'));
    await expect(readImageFolder(root)).rejects.toThrow(
      `image folder: ${join(root, 'b')} is the same folder as ${join(root, 'a')} (reached twice through symlinks)`,
    );
  });

  it('follows a link to a folder or a file once', async () => {
    const root = join(dir, 'linked');
    await writeSolidPng(join(dir, 'elsewhere/deep/y.png'), 2, RED);
    await writeSolidPng(join(dir, 'elsewhere/z.png'), 2, RED);
    await writeSolidPng(join(root, 'a/x.png'), 2, RED);
    await symlink(join(dir, 'elsewhere/deep'), join(root, 'a/more'));
    await symlink(join(dir, 'elsewhere/z.png'), join(root, 'a/z.png'));
    const split = await readImageFolder(root);
    expect(split.samples.map((s) => s.path)).toEqual([
      join(root, 'a/more/y.png'),
      join(root, 'a/x.png'),
      join(root, 'a/z.png'),
    ]);
  });

  it('lists a FIFO named like an image so that checkSplit reports it, without ever opening it', async () => {
    const root = join(dir, 'piped');
    await writeSolidPng(join(root, 'a/x.png'), 2, RED);
    makeFifo(join(root, 'a/y.png'));
    const split = await readImageFolder(root);
    expect(split.samples.map((s) => s.path)).toEqual([join(root, 'a/x.png'), join(root, 'a/y.png')]);
    const result = await checkSplit(split, { decode: true, imageSize: [2, 2] });
    expect(result.problems).toEqual([
      {
        file: join(root, 'a/y.png'),
        message: `image path is not a regular file (a FIFO (named pipe)): ${join(root, 'a/y.png')}`,
      },
    ]);
  });
});
