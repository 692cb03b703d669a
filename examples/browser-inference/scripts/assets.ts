/**
 * Puts the page's generated assets under public/ (git-ignored; `pnpm build` and `pnpm dev` run this first):
 *   public/model/vit.safetensors      the bundled backbone, copied from models/ (never committed twice)
 *   public/wasm/*.wasm                tfjs-backend-wasm's binaries, served from the build (no CDN)
 *   public/tasks/<task>/{train,val,test}.png + task.json
 *                                     mini-VTAB tasks as sprite sheets (32×32 tiles, row by row) with labels
 * The sheets hold the very pixels of the PNGs `generateTask` writes to .cache/tasks/<task>/ (a VTAB-1k folder),
 * so `peft eval --data.root .cache/tasks --data.task <task>` scores an adapter on the images the page used.
 * Rerunning is cheap: a task is regenerated only when its stamp (task, seed, counts) changes.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readRawImage, readVtabTask, toChannels } from '@peftjs/data';
import { MINI_VTAB_TASKS, generateTask } from '@peftjs/mini-vtab';
import sharp from 'sharp';
import { BUNDLED_TASKS, SHEET_COLUMNS, TASK_COUNTS, TASK_SEED, type TaskManifest } from '../src/tasks.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pub = join(root, 'public');
/** The VTAB-1k folders of the bundled tasks (what `peft eval` reads; test/browser.test.ts uses the same path). */
const TASKS_CACHE = join(root, '.cache', 'tasks');

async function copyBackbone(): Promise<void> {
  await mkdir(join(pub, 'model'), { recursive: true });
  await copyFile(
    join(root, '../../models/peftjs-vit-tiny12-p8-32.safetensors'),
    join(pub, 'model', 'vit.safetensors'),
  );
}

async function copyWasm(): Promise<void> {
  const require = createRequire(import.meta.url);
  const dist = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  await mkdir(join(pub, 'wasm'), { recursive: true });
  for (const file of [
    'tfjs-backend-wasm.wasm',
    'tfjs-backend-wasm-simd.wasm',
    'tfjs-backend-wasm-threaded-simd.wasm',
  ]) {
    await copyFile(join(dist, file), join(pub, 'wasm', file));
  }
}

/** Tiles every image of a split into one RGB PNG, `SHEET_COLUMNS` tiles a row, in list order. */
async function sheet(paths: readonly string[], size: number): Promise<Buffer> {
  const rows = Math.ceil(paths.length / SHEET_COLUMNS);
  const width = SHEET_COLUMNS * size;
  const pixels = new Uint8Array(rows * size * width * 3);
  for (const [i, path] of paths.entries()) {
    const image = toChannels(await readRawImage(path), 3);
    if (image.width !== size || image.height !== size) {
      throw new Error(`${path}: ${image.width}×${image.height}, expected ${size}×${size}`);
    }
    const x0 = (i % SHEET_COLUMNS) * size;
    const y0 = Math.floor(i / SHEET_COLUMNS) * size;
    for (let y = 0; y < size; y++) {
      const from = image.data.subarray(y * size * 3, (y + 1) * size * 3);
      pixels.set(from, ((y0 + y) * width + x0) * 3);
    }
  }
  return sharp(pixels, { raw: { width, height: rows * size, channels: 3 } })
    .png({ compressionLevel: 9 })
    .toBuffer();
}

async function writeTask(name: string, classNames: readonly string[]): Promise<void> {
  const info = MINI_VTAB_TASKS.find((t) => t.name === name);
  if (!info) throw new Error(`unknown mini-VTAB task ${name}`);
  const out = join(pub, 'tasks', name);
  const stamp = JSON.stringify({ name, seed: TASK_SEED, counts: TASK_COUNTS, columns: SHEET_COLUMNS });
  const stampFile = join(out, 'stamp.json');
  if (existsSync(stampFile) && (await readFile(stampFile, 'utf8')) === stamp) return;
  const started = performance.now();
  await rm(out, { recursive: true, force: true });
  await generateTask(name, { root: TASKS_CACHE, seed: TASK_SEED, counts: TASK_COUNTS });
  const task = await readVtabTask(TASKS_CACHE, name, { numClasses: info.numClasses });
  await mkdir(out, { recursive: true });
  const splits = { train: task.splits.train800, val: task.splits.val200, test: task.splits.test };
  const labels: Record<string, number[]> = {};
  for (const [split, list] of Object.entries(splits)) {
    await writeFile(
      join(out, `${split}.png`),
      await sheet(
        list.samples.map((s) => s.path),
        32,
      ),
    );
    labels[split] = list.samples.map((s) => s.label);
  }
  const manifest: TaskManifest = {
    name,
    description: info.description,
    numClasses: info.numClasses,
    classNames: [...classNames],
    size: 32,
    columns: SHEET_COLUMNS,
    seed: TASK_SEED,
    labels: { train: labels.train ?? [], val: labels.val ?? [], test: labels.test ?? [] },
  };
  await writeFile(join(out, 'task.json'), `${JSON.stringify(manifest)}\n`);
  await writeFile(stampFile, stamp);
  console.log(`[assets] task ${name}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

await copyBackbone();
await copyWasm();
for (const task of BUNDLED_TASKS) await writeTask(task.name, task.classNames);
await writeFile(join(pub, 'tasks', 'index.json'), `${JSON.stringify(BUNDLED_TASKS.map((t) => t.name))}\n`);
