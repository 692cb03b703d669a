import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VTAB_TASKS, readListFile, readVtabTask } from './lists.js';
import { makeFifo, tempDir, writeVtabTask } from './test-support.js';

let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  await writeVtabTask(dir, 'mini');
});
afterAll(() => cleanup());

describe('VTAB_TASKS', () => {
  it('lists the 19 tasks with their class counts and groups', () => {
    expect(Object.keys(VTAB_TASKS)).toHaveLength(19);
    expect(VTAB_TASKS.sun397).toEqual({ numClasses: 397, group: 'natural' });
    expect(VTAB_TASKS.diabetic_retinopathy).toEqual({ numClasses: 5, group: 'specialized' });
    expect(VTAB_TASKS.smallnorb_ele).toEqual({ numClasses: 9, group: 'structured' });
    const groups = Object.values(VTAB_TASKS).map((t) => t.group);
    expect(groups.filter((g) => g === 'natural')).toHaveLength(7);
    expect(groups.filter((g) => g === 'specialized')).toHaveLength(4);
    expect(groups.filter((g) => g === 'structured')).toHaveLength(8);
  });
});

describe('readListFile', () => {
  it('resolves paths against baseDir and records file and line, skipping blank lines', async () => {
    const file = join(dir, 'list.txt');
    await writeFile(file, 'a/x.png 3\r\n\n  b/y.jpg\t0  \n');
    const split = await readListFile(file, { baseDir: join(dir, 'base'), numClasses: 4 });
    expect(split.name).toBe('list');
    expect(split.numClasses).toBe(4);
    expect(split.rejected).toEqual([]);
    expect(split.samples).toEqual([
      { path: join(dir, 'base/a/x.png'), label: 3, source: { file, line: 1 } },
      { path: join(dir, 'base/b/y.jpg'), label: 0, source: { file, line: 3 } },
    ]);
  });

  it('keeps malformed lines and non-integer labels as rejected entries with their lines', async () => {
    const file = join(dir, 'bad.txt');
    await writeFile(file, 'ok.png 1\nno-label.png\nx.png 2.5\ntoo many fields 1\n');
    const split = await readListFile(file);
    expect(split.samples.map((s) => s.source?.line)).toEqual([1]);
    expect(split.rejected).toEqual([
      { file, line: 2, message: 'malformed line, expected "path label" but got 1 fields: "no-label.png"' },
      { file, line: 3, message: 'label "2.5" is not an integer' },
      {
        file,
        line: 4,
        message: 'malformed line, expected "path label" but got 4 fields: "too many fields 1"',
      },
    ]);
  });

  it('names the list file it cannot read', async () => {
    await expect(readListFile(join(dir, 'absent.txt'))).rejects.toThrow(
      /cannot read list file .*absent\.txt/,
    );
  });
});

describe('readVtabTask', () => {
  it('reads the four splits with paths relative to the task folder', async () => {
    const task = await readVtabTask(dir, 'mini');
    expect(task.numClasses).toBe(10); // custom task: largest label + 1
    expect(Object.keys(task.splits).sort()).toEqual(['test', 'train800', 'train800val200', 'val200']);
    expect(task.splits.train800.samples).toHaveLength(6);
    expect(task.splits.train800val200.samples).toHaveLength(8);
    const first = task.splits.test.samples[0];
    expect(first?.path).toBe(join(dir, 'mini/images/img8.png'));
    expect(first?.source).toEqual({ file: join(dir, 'mini/test.txt'), line: 1 });
    expect(task.splits.val200.numClasses).toBe(10);
  });

  it('uses the declared class count of a known task and an explicit one for a custom task', async () => {
    await writeVtabTask(dir, 'svhn');
    expect((await readVtabTask(dir, 'svhn')).numClasses).toBe(10);
    expect((await readVtabTask(dir, 'mini', { numClasses: 12 })).splits.test.numClasses).toBe(12);
  });

  it('rejects task names with path separators and names a missing list file', async () => {
    await expect(readVtabTask(dir, '../x')).rejects.toThrow(/option "task"/);
    await expect(readVtabTask(dir, 'absent')).rejects.toThrow(/cannot read list file .*absent[/\\]/);
  });
});

describe('readVtabTask: inferred class counts', () => {
  async function customTask(name: string, labels: number[]): Promise<string> {
    const taskDir = join(dir, name);
    await mkdir(taskDir, { recursive: true });
    const lines = labels.map((label, i) => `images/${i}.png ${label}`).join('\n');
    for (const split of ['train800', 'val200', 'train800val200', 'test']) {
      await writeFile(
        join(taskDir, `${split}.txt`),
        split === 'train800' ? `${lines}\n` : 'images/0.png 0\n',
      );
    }
    return join(taskDir, 'train800.txt');
  }

  it('refuses the count a typo label makes, naming its file:line and the option that accepts it', async () => {
    const list = await customTask('typo', [0, 1, 2000000, 2, 3]);
    await expect(readVtabTask(dir, 'typo')).rejects.toThrow(
      `VTAB task "typo" in ${join(dir, 'typo')}: label 2000000 at ${list}:3 would make 2,000,001 classes, ` +
        'more than the 100,000 ever inferred. Fix the label if it is a typo, or state the class count with ' +
        'numClasses (peft: data.numClasses) to accept it',
    );
    const task = await readVtabTask(dir, 'typo', { numClasses: 2_000_001 });
    expect(task.numClasses).toBe(2_000_001);
  });

  it('refuses a count where most classes would have no sample, and accepts a few gaps', async () => {
    const list = await customTask('gappy', [0, 1, 2, 90]);
    await expect(readVtabTask(dir, 'gappy')).rejects.toThrow(
      `label 90 at ${list}:4 would make 91 classes, but only 4 distinct labels appear`,
    );
    await customTask('sparse', [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 25]);
    expect((await readVtabTask(dir, 'sparse')).numClasses).toBe(26); // 15 classes without a sample: tolerated
  });

  it('reads only regular list files, within maxFileBytes', async () => {
    await customTask('piped', [0, 1]);
    await rm(join(dir, 'piped/test.txt'));
    makeFifo(join(dir, 'piped/test.txt'));
    await expect(readVtabTask(dir, 'piped')).rejects.toThrow(
      `cannot read list file ${join(dir, 'piped/test.txt')}: a FIFO (named pipe), not a regular file; only regular files are read`,
    );
    const big = await customTask('big', [0, 1]);
    await expect(readListFile(big, { limits: { maxFileBytes: 10 } })).rejects.toThrow(
      `cannot read list file ${big}: 30 bytes, over the limit of 10 bytes; raise option "maxFileBytes" (peft: --data.maxFileMb) if the file is genuine`,
    );
  });
});
