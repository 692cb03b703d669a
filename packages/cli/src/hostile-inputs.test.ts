/**
 * Hostile and unlucky inputs through the `peft` command line: each is refused with one message naming the file,
 * line, tensor or option at fault (exit 1, or 2 for a usage mistake) and nothing is written, or now gives the right
 * result. The files are small and made here; memory-ceiling.test.ts in @peftjs/data runs the large bombs under a
 * memory ceiling.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VisionTransformer } from '@peftjs/backbone';
import { linearProbe } from '@peftjs/baselines';
import { createPeftModel, initBackend, saveAdapter } from '@peftjs/core';
import { serializeSafetensors, writeSafetensors } from '@peftjs/core/safetensors';
import { tinyMnistVit } from '@peftjs/test-fixtures';
import { zipSync } from 'fflate';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, runCli } from './main.js';
import type { Output } from './progress.js';

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

/** Runs `peft`; `err` is stderr without the backend line commands print first (the error is what follows). */
async function peft(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = capture();
  const err = capture();
  const code = await runCli(argv, { out, err });
  // The error is the last thing a failing command writes; progress lines (loading, checking …) come before it.
  const text = err.text();
  const error = text.indexOf('peft: ');
  return { code, out: out.text(), err: error < 0 ? '' : text.slice(error) };
}

let dir: string;
let config: string;
let adapter: string;
const at = (...parts: string[]) => join(dir, ...parts);

async function png(path: string, size: number, value = 128): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await sharp(new Uint8Array(size * size).fill(value), { raw: { width: size, height: size, channels: 1 } })
    .png()
    .toFile(path);
}

/** A `.npy` (version 2, so the header may exceed 64 KiB) with the given header dict and float32 payload. */
function npy(header: string, values: number[]): Uint8Array {
  const padded = header + ' '.repeat(63 - ((12 + header.length) % 64)) + '\n';
  const out = new Uint8Array(12 + padded.length + 4 * values.length);
  out.set([0x93, ...Buffer.from('NUMPY'), 2, 0]);
  const view = new DataView(out.buffer);
  view.setUint32(8, padded.length, true);
  out.set(Buffer.from(padded, 'latin1'), 12);
  for (const [i, v] of values.entries()) view.setFloat32(12 + padded.length + 4 * i, v, true);
  return out;
}

/** IDX bytes: uint8 values (int8 when `signed`) under `dims`. */
function idx(dims: number[], values: number[], signed = false): Buffer {
  const out = Buffer.alloc(4 + 4 * dims.length + values.length);
  out.writeUInt8(signed ? 0x09 : 0x08, 2);
  out.writeUInt8(dims.length, 3);
  for (const [i, d] of dims.entries()) out.writeUInt32BE(d, 4 + 4 * i);
  const at = 4 + 4 * dims.length;
  for (const [i, v] of values.entries()) {
    if (signed) out.writeInt8(v, at + i);
    else out.writeUInt8(v, at + i);
  }
  return out;
}

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', log: false });
  dir = await mkdtemp(join(tmpdir(), 'peftjs-hostile-'));
  const vit = VisionTransformer.create(tinyMnistVit(), { seed: 7 });
  const tensors = [...vit.toTorchTensors()].map(([name, t]) => ({ name, shape: t.shape, data: t.data }));
  await writeSafetensors(at('tiny.safetensors'), tensors, { config: JSON.stringify({ num_heads: 2 }) });
  const poisoned = tensors.map((t) =>
    t.name === 'blocks.2.mlp.fc1.weight'
      ? { ...t, data: Float32Array.from(t.data, (v, i) => (i === 7 ? Number.NaN : v)) }
      : t,
  );
  await writeFile(
    at('nan.safetensors'),
    serializeSafetensors(poisoned, { config: JSON.stringify({ num_heads: 2 }) }),
  );
  const model = createPeftModel(vit, [linearProbe()], { seed: 1, numClasses: 3 });
  adapter = at('adapter');
  await saveAdapter(model, adapter);
  model.dispose();
  config = at('run.yaml');
  await writeFile(
    config,
    [
      'backend: wasm',
      `out: ${at('run')}`,
      'model:',
      `  weights: ${at('tiny.safetensors')}`,
      'method:',
      '  name: linear',
      '',
    ].join('\n'),
  );
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('ImageFolder splits', () => {
  it('labels val and test with the classes of train; a class only test has is refused by name (exit 1)', async () => {
    for (const c of ['a', 'b', 'c']) await png(at('folders/train', c, 'x.png'), 28);
    for (const c of ['a', 'c']) await png(at('folders/val', c, 'x.png'), 28);
    for (const c of ['a', 'b', 'c']) await png(at('folders/test', c, 'x.png'), 28);
    const flags = ['--data.format=imagefolder', `--data.root=${at('folders')}`];
    const ok = await peft('data', 'check', '--config', config, ...flags);
    expect(ok.code, ok.err).toBe(EXIT.ok);
    expect(ok.out).toBe('data ok: train 3, val 2, test 3\n');
    await png(at('folders/test/d/x.png'), 28);
    const extra = await peft('data', 'check', '--config', config, ...flags);
    expect(extra.code).toBe(EXIT.failure);
    expect(extra.err).toBe(
      `peft: image folder ${at('folders/test')}: class folder "d" not among the 3 classes of split "train" (a, b, c); ` +
        'every split is labelled with the classes of "train", so it needs that folder too\n',
    );
  });

  it('refuses a symlink loop in a class folder instead of multiplying its samples (exit 1)', async () => {
    for (const split of ['train', 'val', 'test']) await png(at('looped', split, 'a/x.png'), 28);
    await symlink('..', at('looped/train/a/up'));
    const check = await peft(
      'data',
      'check',
      '--config',
      config,
      '--data.format=imagefolder',
      `--data.root=${at('looped')}`,
    );
    expect(check.code).toBe(EXIT.failure);
    expect(check.err).toMatch(
      /^peft: image folder: .*looped\/train\/a\/up is a symlink loop \(it leads back to .*looped\/train, a folder above it\)/,
    );
  });
});

describe('class counts and labels', () => {
  it('refuses a typo label in a VTAB list before building anything, naming file:line and data.numClasses', async () => {
    const task = at('vtab/typo');
    for (let i = 0; i < 3; i++) await png(join(task, `${i}.png`), 28);
    const list = ['0.png 0', '1.png 1', '2.png 2000000'].join('\n');
    for (const split of ['train800', 'val200', 'train800val200', 'test'])
      await writeFile(join(task, `${split}.txt`), `${list}\n`);
    const flags = ['--data.format=vtab', `--data.root=${at('vtab')}`, '--data.task=typo'];
    const dry = await peft('train', '--config', config, '--dry-run', ...flags);
    expect(dry.code).toBe(EXIT.failure);
    expect(dry.out).toBe('');
    expect(dry.err).toMatch(
      new RegExp(
        `label 2000000 at ${join(task, 'train800.txt')}:3 would make 2,000,001 classes, more than the 100,000 ever inferred\\. ` +
          'Fix the label if it is a typo, or state the class count with numClasses \\(peft: data.numClasses\\) to accept it',
      ),
    );
    expect(existsSync(at('run'))).toBe(false);
  });

  it('reports IDX labels of -1 in data check (exit 1), naming the labels file and the index', async () => {
    const root = at('idx-minus');
    await mkdir(root, { recursive: true });
    await writeFile(join(root, 'train-images-idx3-ubyte'), idx([4, 28, 28], new Array(4 * 784).fill(0)));
    await writeFile(join(root, 'train-labels-idx1-ubyte'), idx([4], [0, 1, -1, 2], true));
    await writeFile(join(root, 't10k-images-idx3-ubyte'), idx([2, 28, 28], new Array(2 * 784).fill(0)));
    await writeFile(join(root, 't10k-labels-idx1-ubyte'), idx([2], [0, 1]));
    const check = await peft('data', 'check', '--config', config, '--data.format=idx', `--data.root=${root}`);
    expect(check.code).toBe(EXIT.failure);
    expect(check.out).toBe(
      `${join(root, 'train-labels-idx1-ubyte')}: label -1 at index 2 is negative\n1 problem(s)\n`,
    );
  });

  it('refuses IDX images of 0×0 pixels and an empty IDX file by name in data check (exit 1)', async () => {
    const root = at('idx-zero');
    await mkdir(root, { recursive: true });
    await writeFile(join(root, 'train-images-idx3-ubyte'), idx([2, 0, 0], []));
    await writeFile(join(root, 'train-labels-idx1-ubyte'), idx([2], [0, 1]));
    await writeFile(join(root, 't10k-images-idx3-ubyte'), idx([0, 28, 28], []));
    await writeFile(join(root, 't10k-labels-idx1-ubyte'), idx([0], []));
    const flags = ['--data.format=idx', `--data.root=${root}`];
    const zero = await peft('data', 'check', '--config', config, ...flags);
    expect(zero.code).toBe(EXIT.failure);
    expect(zero.err).toBe(
      `peft: IDX file ${join(root, 'train-images-idx3-ubyte')}: images of 0×0 pixels (dims [2, 0, 0]); both must be positive\n`,
    );
    const empty = await peft(
      'data',
      'check',
      '--config',
      config,
      ...flags,
      '--data.trainImages=t10k-images-idx3-ubyte',
      '--data.trainLabels=t10k-labels-idx1-ubyte',
    );
    expect(empty.code).toBe(EXIT.failure);
    expect(empty.err).toBe(
      `peft: IDX images file ${join(root, 't10k-images-idx3-ubyte')} holds no images (dims [0, 28, 28]); a split needs at least one\n`,
    );
  });
});

describe('weights files', () => {
  it('refuses an .npz whose entries share compressed data, in inspect and as model.weights (exit 1)', async () => {
    const single = zipSync({
      'a.npy': [
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1024,), }", new Array(1024).fill(0)),
        { level: 9 },
      ],
    });
    const end = single.length - 22;
    const view = new DataView(single.buffer);
    const cdOffset = view.getUint32(end + 16, true);
    const record = single.slice(cdOffset, end);
    const copy = record.slice();
    copy[46] = 'b'.charCodeAt(0);
    const eocd = single.slice(end);
    const eocdView = new DataView(eocd.buffer);
    eocdView.setUint16(8, 2, true);
    eocdView.setUint16(10, 2, true);
    eocdView.setUint32(12, 2 * record.length, true);
    await writeFile(at('shared.npz'), Buffer.concat([single.subarray(0, cdOffset), record, copy, eocd]));
    const message =
      `peft: ${at('shared.npz')}: entries "a.npy" and "b.npy" overlap in the archive (they share compressed data, ` +
      'so reading both would inflate it twice); refusing the archive\n';
    const inspected = await peft('inspect', at('shared.npz'));
    expect(inspected.code).toBe(EXIT.failure);
    expect(inspected.err).toBe(message);
    const loaded = await peft(
      'train',
      '--config',
      config,
      '--dry-run',
      `--model.weights=${at('shared.npz')}`,
    );
    expect(loaded.code).toBe(EXIT.failure);
    expect(loaded.err).toBe(message);
  });

  it('caps what an .npz may declare with model.maxNpzMb', async () => {
    await writeFile(
      at('plain.npz'),
      zipSync({ 'x.npy': npy("{'descr': '<f4', 'fortran_order': False, 'shape': (262144,), }", []) }),
    );
    // 262144 float32 values are declared (1 MiB), but the payload is missing: within the cap, the .npy check fails.
    const within = await peft('train', '--config', config, '--dry-run', `--model.weights=${at('plain.npz')}`);
    expect(within.err).toMatch(
      /plain\.npz:x\.npy: shape \(262144,\) of <f4 needs 1048576 data bytes; the file holds 0/,
    );
    const capped = await peft(
      'train',
      '--config',
      config,
      '--dry-run',
      `--model.weights=${at('plain.npz')}`,
      '--model.maxNpzMb=0.0001',
    );
    expect(capped.code).toBe(EXIT.failure);
    expect(capped.err).toMatch(
      /plain\.npz: its 1 arrays declare 128 bytes, over the limit of 104; raise option "maxInflatedBytes" \(peft: --model\.maxNpzMb\)/,
    );
  });

  it('names the entry of a .npy header nested too deep (was "Maximum call stack size exceeded")', async () => {
    await writeFile(at('deep.npz'), zipSync({ 'w.npy': npy(`{'descr': ${'('.repeat(50_000)}`, []) }));
    const inspected = await peft('inspect', at('deep.npz'));
    expect(inspected.code).toBe(EXIT.failure);
    expect(inspected.err).toBe(
      `peft: ${at('deep.npz')}:w.npy: invalid header at character 41: nested deeper than 32 levels (a .npy header is a flat dict)\n`,
    );
  });

  it('refuses NaN backbone weights at load, naming the tensor (exit 1)', async () => {
    const dry = await peft(
      'train',
      '--config',
      config,
      '--dry-run',
      `--model.weights=${at('nan.safetensors')}`,
    );
    expect(dry.code).toBe(EXIT.failure);
    expect(dry.out).toBe('');
    expect(dry.err).toBe(
      `peft: ${at('nan.safetensors')}: tensor "blocks.2.mlp.fc1.weight" holds 1 non-finite value (first NaN at flat index 7 of shape [128, 32]); refusing to load\n`,
    );
  });
});

describe('IDX size limit', () => {
  it('refuses a gzipped IDX declaring more than data.maxIdxMb, and reads it once the limit is raised', async () => {
    const root = at('idx-gz');
    await mkdir(root, { recursive: true });
    const { gzipSync } = await import('node:zlib');
    await writeFile(
      join(root, 'train-images-idx3-ubyte'),
      gzipSync(idx([20, 28, 28], new Array(20 * 784).fill(0))),
    );
    await writeFile(
      join(root, 'train-labels-idx1-ubyte'),
      idx(
        [20],
        Array.from({ length: 20 }, (_, i) => i % 10),
      ),
    );
    await writeFile(join(root, 't10k-images-idx3-ubyte'), idx([2, 28, 28], new Array(2 * 784).fill(0)));
    await writeFile(join(root, 't10k-labels-idx1-ubyte'), idx([2], [0, 1]));
    const flags = ['--data.format=idx', `--data.root=${root}`];
    const capped = await peft('data', 'check', '--config', config, ...flags, '--data.maxIdxMb=0.01');
    expect(capped.code).toBe(EXIT.failure);
    expect(capped.err).toBe(
      `peft: IDX file ${join(root, 'train-images-idx3-ubyte')}: dims [20, 28, 28] of uint8 declare 15,696 bytes, ` +
        'over the limit of 10,485; raise option "maxIdxBytes" (peft: --data.maxIdxMb) if the file is genuine\n',
    );
    const ok = await peft('data', 'check', '--config', config, ...flags);
    expect(ok.code, ok.err).toBe(EXIT.ok);
  });
});

describe('peft predict on hostile image paths', () => {
  const predict = (...args: string[]) => peft('predict', '--config', config, '--adapter', adapter, ...args);

  it('classifies a genuine image, and refuses one over data.maxImagePixels from its header', async () => {
    await png(at('images/big.png'), 64);
    const ok = await predict(at('images/big.png'));
    expect(ok.code, ok.err).toBe(EXIT.ok);
    expect(JSON.parse(ok.out)).toMatchObject({ image: at('images/big.png') });
    const capped = await predict('--data.maxImagePixels=4000', at('images/big.png'));
    expect(capped.code).toBe(EXIT.failure);
    expect(capped.err).toBe(
      `peft: cannot decode image ${at('images/big.png')}: 64×64 = 4,096 pixels, over the limit of 4,000; ` +
        'raise option "maxImagePixels" (peft: --data.maxImagePixels) if the image is genuine\n',
    );
  });

  it('refuses an SVG named .png and a 1-bit BMP over the pixel limit (exit 1)', async () => {
    await writeFile(
      at('images/vector.png'),
      '<svg xmlns="http://www.w3.org/2000/svg" width="30000" height="30000"/>',
    );
    const svg = await predict(at('images/vector.png'));
    expect(svg.code).toBe(EXIT.failure);
    expect(svg.err).toMatch(
      /not a PNG, JPEG, GIF, WebP, TIFF or BMP file: it starts with 3c 73 76 67 .*\(it looks like SVG, which is not decoded\)/,
    );
    const header = Buffer.alloc(62);
    header.write('BM', 0, 'latin1');
    header.writeUInt32LE(62, 10);
    header.writeUInt32LE(40, 14);
    header.writeInt32LE(20_000, 18);
    header.writeInt32LE(8, 22);
    header.writeUInt16LE(1, 26);
    header.writeUInt16LE(1, 28);
    await writeFile(at('images/onebit.bmp'), Buffer.concat([header, Buffer.alloc(2500 * 8)]));
    const bmp = await predict('--data.maxImagePixels=100000', at('images/onebit.bmp'));
    expect(bmp.code).toBe(EXIT.failure);
    expect(bmp.err).toMatch(/onebit\.bmp: 20000×8 = 160,000 pixels, over the limit of 100,000/);
  });

  it('refuses /dev/zero, a FIFO and a folder at once instead of reading forever or hanging (exit 1)', async () => {
    const zero = await predict('/dev/zero');
    expect(zero.code).toBe(EXIT.failure);
    expect(zero.err).toBe(
      'peft: cannot read image /dev/zero: a character device, not a regular file; only regular files are read\n',
    );
    expect(spawnSync('mkfifo', [at('images/pipe.png')]).status).toBe(0);
    const fifo = await predict(at('images/pipe.png'));
    expect(fifo.code).toBe(EXIT.failure);
    expect(fifo.err).toMatch(/pipe\.png: a FIFO \(named pipe\), not a regular file/);
    const folder = await predict(at('images'));
    expect(folder.err).toMatch(/images: a directory, not a regular file/);
  });

  it('rejects a bad limit value or a misspelt limit key as usage errors (exit 2)', async () => {
    const zero = await predict('--data.maxImagePixels=0', at('images/big.png'));
    expect(zero.code).toBe(EXIT.usage);
    expect(zero.err).toMatch(/data\.maxImagePixels/);
    const typo = await predict('--data.maxImagePixel=5', at('images/big.png'));
    expect(typo.code).toBe(EXIT.usage);
    expect(typo.err).toMatch(/unknown flag --data\.maxImagePixel \(did you mean "data\.maxImagePixels"\?\)/);
  });
});
