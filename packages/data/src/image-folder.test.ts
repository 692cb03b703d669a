import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readImageFolder } from './image-folder.js';
import { BLUE, GREEN, RED, tempDir, writeSolidPng } from './test-support.js';

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
