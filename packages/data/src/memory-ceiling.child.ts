/**
 * Child process of memory-ceiling.test.ts: runs one hostile input through the loader a user would reach it by,
 * in a process of its own (started with a small `--max-old-space-size`), and prints one JSON line: the errors
 * raised (or problems reported) and the peak resident set size. Not part of the package.
 */
import { loadVit } from '@peftjs/backbone';
import { PeftError } from '@peftjs/core';
import { checkSplit, decodeImage, idxDataset } from './index.js';

async function run(kind: string, paths: string[]): Promise<{ codes: string[]; messages: string[] }> {
  const path = paths[0] as string;
  switch (kind) {
    case 'baseline':
      return { codes: [], messages: [] };
    case 'weights':
      await loadVit(path); // what `model.weights` and the library's loadVit do with the file
      return { codes: [], messages: [] };
    case 'idx':
      await idxDataset(path, paths[1] as string);
      return { codes: [], messages: [] };
    case 'image':
      await decodeImage(path, { size: [32, 32], channels: 3 });
      return { codes: [], messages: [] };
    case 'data-check': {
      // What `peft data check` does with a split: decode every image, 16 at a time.
      const split = { name: 'bombs', samples: paths.map((p) => ({ path: p, label: 0 })), numClasses: 1 };
      const result = await checkSplit(split, { decode: true, imageSize: [32, 32], concurrency: 16 });
      return { codes: result.problems.map(() => 'PROBLEM'), messages: result.problems.map((p) => p.message) };
    }
    default:
      throw new Error(`unknown case ${kind}`);
  }
}

const [kind = '', ...paths] = process.argv.slice(2);
let outcome: { codes: string[]; messages: string[] };
try {
  outcome = await run(kind, paths);
} catch (error) {
  outcome = {
    codes: [error instanceof PeftError ? error.code : (error as Error).name],
    messages: [(error as Error).message],
  };
}
process.stdout.write(`${JSON.stringify({ ...outcome, maxRssKb: process.resourceUsage().maxRSS })}\n`);
