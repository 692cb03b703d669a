/**
 * Resource test: every class of memory bomb is refused by a process with a 256 MB heap, and its resident set
 * (VmHWM polled from /proc, and the child's own maxRSS) stays far below what the file declares. Each input runs in
 * a child process (memory-ceiling.child.ts) so that its peak is its own; a watchdog kills a child whose RSS passes
 * 1 GiB or that hangs, so that a regression fails this test without taking the machine down. The hostile files are
 * generated here, in a temporary folder: none is larger than 50 MB on disk (and that one is sparse).
 * `PEFTJS_PRINT_PEAKS=1` prints each case's peak next to the idle child's.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  blackPng,
  gzipZeros,
  idxHeader,
  oneBitBmpHeader,
  overlappingNpz,
  svgOfSize,
  tempDir,
  writeSparse,
} from './test-support.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');
const child = join(here, 'memory-ceiling.child.ts');
const MiB = 2 ** 20;
/** The watchdog's line: a child above this is killed and the case fails. */
const KILL_ABOVE_KB = 1024 * 1024;
/** A child still running after this is killed and the case fails (a FIFO used to hang forever). */
const HANG_MS = 60_000;

interface ChildResult {
  /** Error codes raised (`PROBLEM` for each problem a data check reported). */
  readonly codes: string[];
  readonly messages: string[];
  /** Peak resident set size, kB: the larger of the child's maxRSS and the VmHWM seen from outside. */
  readonly peakKb: number;
}

function vmHwmKb(pid: number): number | null {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null; // exited between polls
  }
}

function runChild(kind: string, paths: string[]): Promise<ChildResult> {
  return new Promise((resolvePromise, reject) => {
    const args = ['--max-old-space-size=256', '--conditions=@peftjs/source', '--import', 'tsx', child, kind];
    const proc = spawn(process.execPath, [...args, ...paths], {
      cwd: repoRoot,
      env: { ...process.env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let peakKb = 0;
    let killed: string | null = null;
    proc.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    proc.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const poll = setInterval(() => {
      const hwm = proc.pid === undefined ? null : vmHwmKb(proc.pid);
      if (hwm !== null) peakKb = Math.max(peakKb, hwm);
      if (peakKb > KILL_ABOVE_KB && !killed) {
        killed = `RSS passed ${KILL_ABOVE_KB} kB`;
        proc.kill('SIGKILL');
      }
    }, 10);
    const timer = setTimeout(() => {
      killed = `still running after ${HANG_MS} ms`;
      proc.kill('SIGKILL');
    }, HANG_MS);
    proc.on('close', (code) => {
      clearInterval(poll);
      clearTimeout(timer);
      if (killed) return reject(new Error(`${kind}: child killed, ${killed} (peak ${peakKb} kB)`));
      const line = stdout.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) {
        return reject(new Error(`${kind}: child exited ${code}: ${stderr.slice(-2000)}`));
      }
      const parsed = JSON.parse(line) as { codes: string[]; messages: string[]; maxRssKb: number };
      resolvePromise({ ...parsed, peakKb: Math.max(peakKb, parsed.maxRssKb) });
    });
  });
}

let dir: string;
let cleanup: () => Promise<void>;
let baselineKb = 0;
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  // 300 directory entries sharing one deflated 8 MiB array: 25 KB on disk, 2.5 GB if each entry is inflated.
  await writeFile(file('shared.npz'), overlappingNpz(300, 8 * MiB));
  // A gzipped IDX whose header declares 3,000,000 images of 28×28 (2.35 GB): 2.3 MB on disk.
  await writeFile(file('declared.idx.gz'), gzipZeros(idxHeader([3_000_000, 28, 28]), 8 * MiB, 280));
  // One that declares 60,000 images (47 MB) but inflates to 2.35 GB.
  await writeFile(file('longer.idx.gz'), gzipZeros(idxHeader([60_000, 28, 28]), 8 * MiB, 280));
  await writeFile(file('labels.idx'), Buffer.concat([idxHeader([60_000]), Buffer.alloc(60_000)]));
  // Sixteen 12000×12000 PNGs (144 M pixels, 432 MB as RGB each, 6.9 GB together): 140 KB each.
  const png = blackPng(12_000, 12_000);
  for (let i = 0; i < 16; i++) await writeFile(file(`huge${i}.png`), png);
  // 75 bytes of SVG named .png, rendering 16000×16000 RGBA (1 GB).
  await writeFile(file('vector.png'), svgOfSize(16_000, 16_000));
  // A 1-bit 20000×20000 BMP: 50 MB on disk (sparse), 1.2 GB as RGB.
  const bmp = oneBitBmpHeader(20_000, 20_000);
  await writeSparse(file('onebit.bmp'), bmp.header, bmp.fileBytes);
  await new Promise<void>((done, fail) =>
    spawn('mkfifo', [file('pipe.png')]).on('close', (code) =>
      code === 0 ? done() : fail(new Error('mkfifo')),
    ),
  );
  baselineKb = (await runChild('baseline', [])).peakKb;
});
afterAll(() => cleanup());

/** Refused with `pattern`, and the peak RSS stays within 256 MB of an idle child and under 1/4 of `declared`. */
function expectRefusedSmall(result: ChildResult, pattern: RegExp, declaredBytes: number): void {
  if (process.env.PEFTJS_PRINT_PEAKS)
    console.log(`peak ${result.peakKb} kB (idle ${baselineKb} kB)`, pattern.source);
  expect(result.messages.length, 'refused').toBeGreaterThan(0);
  for (const message of result.messages) expect(message).toMatch(pattern);
  expect(result.peakKb, `peak ${result.peakKb} kB vs idle ${baselineKb} kB`).toBeLessThan(
    baselineKb + 256 * 1024,
  );
  expect(result.peakKb * 1024).toBeLessThan(declaredBytes / 4);
}

describe('memory bombs under a 256 MB heap', () => {
  it('an idle child (the loaders imported) is the baseline', () => {
    expect(baselineKb).toBeGreaterThan(0);
  });

  it('refuses an .npz whose entries share one compressed array, from its central directory', async () => {
    const result = await runChild('weights', [file('shared.npz')]);
    expect(result.codes).toEqual(['NPZ_INVALID']);
    expectRefusedSmall(result, /entries "w\d+\.npy" and "w\d+\.npy" overlap in the archive/, 300 * 8 * MiB);
  });

  it('refuses a gzipped IDX declaring more than the limit, before inflating it', async () => {
    const result = await runChild('idx', [file('declared.idx.gz'), file('labels.idx')]);
    expect(result.codes).toEqual(['IO_FAILED']);
    expectRefusedSmall(result, /declare 2,352,000,016 bytes, over the limit of 1,073,741,824/, 2_352_000_016);
  });

  it('stops a gzipped IDX that inflates past the size its header declares', async () => {
    const result = await runChild('idx', [file('longer.idx.gz'), file('labels.idx')]);
    expect(result.codes).toEqual(['IO_FAILED']);
    expectRefusedSmall(
      result,
      /corrupt gzip data: decompresses to more than the 47040016 bytes/,
      280 * 8 * MiB,
    );
  });

  it('refuses sixteen huge-dimension PNGs checked 16 at a time, from their headers', async () => {
    const pngs = Array.from({ length: 16 }, (_, i) => file(`huge${i}.png`));
    const result = await runChild('data-check', pngs);
    expect(result.codes).toHaveLength(16);
    expectRefusedSmall(result, /12000×12000 = 144,000,000 pixels, over the limit of 40,000,000/, 16 * 432e6);
  });

  it('refuses an SVG named .png by its first bytes', async () => {
    const result = await runChild('image', [file('vector.png')]);
    expect(result.codes).toEqual(['IO_FAILED']);
    expectRefusedSmall(
      result,
      /not a PNG, JPEG, GIF, WebP, TIFF or BMP file: .*looks like SVG/,
      16_000 ** 2 * 4,
    );
  });

  it('refuses a 1-bit BMP before allocating its pixels', async () => {
    const result = await runChild('image', [file('onebit.bmp')]);
    expect(result.codes).toEqual(['IO_FAILED']);
    expectRefusedSmall(
      result,
      /onebit\.bmp: 20000×20000 = 400,000,000 pixels, over the limit of 40,000,000/,
      20_000 ** 2 * 3,
    );
  });

  it('refuses /dev/zero without reading it', async () => {
    expect(existsSync('/dev/zero')).toBe(true);
    const result = await runChild('image', ['/dev/zero']);
    expect(result.codes).toEqual(['IO_FAILED']);
    expectRefusedSmall(
      result,
      /cannot read image \/dev\/zero: a character device, not a regular file/,
      2 ** 32,
    );
  });

  it('refuses a FIFO without waiting for a writer', async () => {
    const result = await runChild('image', [file('pipe.png')]);
    expect(result.codes).toEqual(['IO_FAILED']);
    expectRefusedSmall(result, /pipe\.png: a FIFO \(named pipe\), not a regular file/, 2 ** 32);
  });
});
