/**
 * End to end in Debian's Chromium (playwright-core): build the page, serve dist/ on 127.0.0.1, load it, then cut
 * the network and check what a user would see:
 *  - the bundled digit samples are classified as right as the page states (and as Node classifies the same PNGs),
 *  - a short fine-tune on a bundled mini-VTAB task in the worker reaches the accuracy stated here, can be
 *    cancelled, classifies a new image, and its downloaded adapter scores the same test accuracy, with the same
 *    predictions, under `peft eval` in Node,
 *  - adapter files load in the page, and a tampered one is refused with the base-fingerprint error,
 *  - images dropped per class train a model that then names its classes, and a run can be cancelled.
 * Skipped with a printed reason when /usr/bin/chromium is missing (`apt-get install -y chromium`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadVitFromBytes } from '@peftjs/backbone';
import { runCli } from '@peftjs/cli';
import { initBackend, loadAdapter } from '@peftjs/core';
import { SHIP_PLUGIN_FACTORIES } from '@peftjs/ship';
import { type Browser, type Page, chromium } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { predictOne } from '../src/digits.js';
import { toModelInput } from '../src/pixels.js';

const CHROMIUM = '/usr/bin/chromium';
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const backbone = join(root, '../../models/peftjs-vit-tiny12-p8-32.safetensors');
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(
    `[browser-inference] SKIPPED: ${CHROMIUM} not found. Install it with: apt-get install -y chromium`,
  );
}

/** The short fine-tune the test runs, and the test accuracy it must reach (stated in README.md). */
const FINE_TUNE = { task: 'orientation', numClasses: 8, method: 'lora', trainImages: 320, epochs: 2 };
const FINE_TUNE_MIN_TOP1 = 0.75;
/** The digit samples: at least this many of 10 right (README.md; public/samples/metrics.json has the count). */
const DIGITS_MIN_CORRECT = 9;

const MIME: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.png': 'image/png',
  '.safetensors': 'application/octet-stream',
};

/** A static server over dist/ that counts the requests it answers. */
function serve(dir: string): Promise<{ server: Server; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname);
    requests.push(path);
    const file = normalize(join(dir, path === '/' ? 'index.html' : path));
    if (!file.startsWith(dir + sep)) {
      response.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      response
        .writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream' })
        .end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, requests })));
}

let served: { server: Server; requests: string[] } | undefined;
let browser: Browser | undefined;
let page: Page;
let work: string;
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!hasChromium) return;
  const node = (args: string[]) => execFileSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  node(['--conditions=@peftjs/source', '--import', 'tsx', 'scripts/assets.ts']);
  const vite = join(dirname(fileURLToPath(import.meta.resolve('vite/package.json'))), 'bin', 'vite.js');
  node([vite, 'build', '--logLevel', 'error']);
  served = await serve(dist);
  work = await mkdtemp(join(tmpdir(), 'peftjs-browser-'));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const context = await browser.newContext({ acceptDownloads: true });
  page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
  const { port } = served.server.address() as AddressInfo;
  await page.goto(`http://127.0.0.1:${port}/?backend=auto`);
  await page.waitForSelector('#status[data-ready="true"], #status[data-error="true"]', { timeout: 120_000 });
  expect(
    await page.getAttribute('#status', 'data-error'),
    (await page.textContent('#status')) ?? '',
  ).toBeNull();
  await page.waitForSelector('#train:not([disabled])', { timeout: 60_000 });
  // From here on the page must need nothing from the network.
  await context.setOffline(true);
  served.requests.length = 0;
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (served ? served.server.close(() => resolve()) : resolve()));
  if (work) await rm(work, { recursive: true, force: true });
});

it.skipIf(!hasChromium)(
  'picks wasm (no hardware WebGPU adapter here) in the page and in the worker',
  async () => {
    expect(await page.getAttribute('#status', 'data-backend')).toBe('wasm');
    expect(await page.getAttribute('#worker-status', 'data-backend')).toBe('wasm');
    expect(await page.textContent('#status')).toMatch(/WebGPU skipped: /);
  },
);

it.skipIf(!hasChromium)(
  'classifies the bundled digits as right as the page states, as Node does',
  async () => {
    const stated = Number(await page.getAttribute('#digits-summary', 'data-stated-correct'));
    const samples = await page.$$eval('#samples figure', (figures) =>
      figures.map((f) => ({
        file: f.getAttribute('data-sample') as string,
        label: Number(f.getAttribute('data-label')),
        predicted: Number(f.getAttribute('data-predicted')),
        logits: JSON.parse(f.getAttribute('data-logits') as string) as number[],
      })),
    );
    expect(samples).toHaveLength(10);
    const correct = samples.filter((s) => s.predicted === s.label).length;
    console.log(`digits: ${correct} of ${samples.length} right in Chromium (stated ${stated})`);
    expect(correct).toBe(stated);
    expect(correct).toBeGreaterThanOrEqual(DIGITS_MIN_CORRECT);
    // Node, loading the same files the Node way, on the same PNG bytes.
    await initBackend({ prefer: 'wasm', log: false });
    const { model: vit } = loadVitFromBytes(readFileSync(backbone));
    const model = await loadAdapter(vit, join(root, 'public/model/adapter'), {
      factories: SHIP_PLUGIN_FACTORIES,
    });
    for (const sample of samples) {
      const { data } = await sharp(join(root, 'public/samples', sample.file))
        .toColourspace('srgb')
        .raw()
        .toBuffer({ resolveWithObject: true });
      const node = predictOne(model, toModelInput(data, 3));
      const worst = Math.max(...node.map((v, i) => Math.abs(v - (sample.logits[i] as number))));
      expect(worst, sample.file).toBeLessThan(1e-4);
    }
    model.dispose();
    vit.dispose();
  },
);

it.skipIf(!hasChromium)(
  'fine-tunes in the worker, classifies a new image, and peft eval scores the download the same',
  async () => {
    await page.selectOption('#task', FINE_TUNE.task);
    await page.fill('#train-count', String(FINE_TUNE.trainImages));
    await page.selectOption('#method', FINE_TUNE.method);
    await page.fill('#epochs', String(FINE_TUNE.epochs));
    const started = Date.now();
    await page.click('#train');
    await page.waitForSelector('#train-result[data-state]', { state: 'attached', timeout: 240_000 });
    expect(
      await page.getAttribute('#train-result', 'data-state'),
      (await page.textContent('#progress')) ?? '',
    ).toBe('trained');
    const top1 = Number(await page.getAttribute('#train-result', 'data-top1'));
    const predictions = JSON.parse(
      (await page.getAttribute('#train-result', 'data-predictions')) ?? '[]',
    ) as number[];
    const speed = Number(await page.getAttribute('#train-result', 'data-images-per-second'));
    console.log(
      `fine-tune ${JSON.stringify(FINE_TUNE)} in Chromium: test top-1 ${(top1 * 100).toFixed(1)} % on ` +
        `${predictions.length} images, ${speed.toFixed(1)} training images/s, ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    expect(top1).toBeGreaterThanOrEqual(FINE_TUNE_MIN_TOP1);
    await page.screenshot({ path: join(root, 'test-results', 'trained.png'), fullPage: true });

    // A new image through the drop zone's file input, with the model just trained: the page's own test prediction.
    const image = join(root, '.cache/tasks', FINE_TUNE.task, 'images/test/0.png');
    await page.setInputFiles('#file', image);
    await page.waitForSelector('#result[data-label], #result[data-error]', {
      state: 'attached',
      timeout: 30_000,
    });
    expect(
      await page.getAttribute('#result', 'data-error'),
      (await page.textContent('#result')) ?? '',
    ).toBeNull();
    expect(Number(await page.getAttribute('#result', 'data-label'))).toBe(predictions[0]);

    // Download both files into one folder and score it with the CLI.
    const adapterDir = join(work, 'adapter');
    for (const file of ['adapter_config.json', 'adapter_model.safetensors']) {
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.click(`#downloads a[data-file="${file}"]`),
      ]);
      expect(download.suggestedFilename()).toBe(file);
      await download.saveAs(join(adapterDir, file));
    }
    let out = '';
    let err = '';
    const code = await runCli(
      [
        'eval',
        `--model.weights=${backbone}`,
        `--data.root=${join(root, '.cache/tasks')}`,
        `--data.task=${FINE_TUNE.task}`,
        `--data.numClasses=${FINE_TUNE.numClasses}`,
        `--adapter=${adapterDir}`,
      ],
      {
        out: {
          isTTY: false,
          write: (s: string) => {
            out += s;
          },
        },
        err: {
          isTTY: false,
          write: (s: string) => {
            err += s;
          },
        },
      },
    );
    expect(code, err).toBe(0);
    const scored = JSON.parse(out.trim().split('\n').pop() as string) as {
      top1: number;
      predictions: number[];
    };
    console.log(
      `peft eval on the downloaded adapter: test top-1 ${(scored.top1 * 100).toFixed(1)} % on ${scored.predictions.length} images`,
    );
    expect(scored.predictions).toEqual(predictions);
    expect(scored.top1).toBe(top1);
  },
);

it.skipIf(!hasChromium)(
  'loads adapter files in the page and refuses one whose base fingerprint differs',
  async () => {
    const adapterDir = join(work, 'adapter');
    const files = ['adapter_config.json', 'adapter_model.safetensors'].map((f) => join(adapterDir, f));
    await page.setInputFiles('#adapter-files', files);
    await page.waitForFunction(() =>
      /loaded|refused/.test(document.getElementById('adapter-status')?.textContent ?? ''),
    );
    expect(await page.textContent('#adapter-status')).toMatch(/^loaded: lora, 8 classes/);
    const tampered = join(work, 'tampered');
    const config = JSON.parse(await readFile(files[0] as string, 'utf8')) as {
      base: { fingerprint: string };
    };
    config.base.fingerprint = `sha256:${'0'.repeat(64)}`;
    await rm(tampered, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(tampered, { recursive: true }));
    await writeFile(join(tampered, 'adapter_config.json'), JSON.stringify(config));
    await writeFile(join(tampered, 'adapter_model.safetensors'), await readFile(files[1] as string));
    await page.evaluate(() => {
      (document.getElementById('adapter-status') as HTMLElement).textContent = '';
    });
    await page.setInputFiles(
      '#adapter-files',
      ['adapter_config.json', 'adapter_model.safetensors'].map((f) => join(tampered, f)),
    );
    await page.waitForFunction(() =>
      /loaded|refused/.test(document.getElementById('adapter-status')?.textContent ?? ''),
    );
    expect(await page.textContent('#adapter-status')).toMatch(/refused: .*base weights differ.*fingerprint/);
  },
);

it.skipIf(!hasChromium)(
  'trains on images dropped per class and classifies with the class names',
  async () => {
    // Two classes of the user's own images: orientation's 0–22.5° and 90–112.5° bars, 25 each (5 held out each).
    const list = readFileSync(join(root, '.cache/tasks', FINE_TUNE.task, 'train800.txt'), 'utf8')
      .trim()
      .split('\n');
    const imagesOf = (label: number) =>
      list
        .map((line) => line.split(' '))
        .filter(([, l]) => Number(l) === label)
        .slice(0, 25)
        .map(([path]) => join(root, '.cache/tasks', FINE_TUNE.task, path as string));
    await page.selectOption('#task', 'user');
    const boxes = page.locator('#user-classes .class-box');
    await boxes.nth(0).locator('input:not([type=file])').fill('flat');
    await boxes.nth(0).locator('input[type=file]').setInputFiles(imagesOf(0));
    await boxes.nth(1).locator('input:not([type=file])').fill('upright');
    await boxes.nth(1).locator('input[type=file]').setInputFiles(imagesOf(4));
    expect(await boxes.nth(1).textContent()).toContain('25 images');
    await page.selectOption('#method', 'linear');
    await page.fill('#epochs', '2');
    await page.click('#train');
    await page.waitForSelector('#train-result[data-state]', { state: 'attached', timeout: 120_000 });
    expect(
      await page.getAttribute('#train-result', 'data-state'),
      (await page.textContent('#progress')) ?? '',
    ).toBe('trained');
    // No test split for the user's images: nothing is claimed about test accuracy.
    expect(await page.getAttribute('#train-result', 'data-top1')).toBeNull();
    await page.setInputFiles('#file', imagesOf(0)[0] as string);
    await page.waitForSelector('#result[data-label], #result[data-error]', {
      state: 'attached',
      timeout: 30_000,
    });
    expect(await page.textContent('#result')).toMatch(/: (flat|upright) \(the model trained here/);
  },
);

it.skipIf(!hasChromium)('cancels a training run', async () => {
  await page.selectOption('#method', 'linear');
  await page.fill('#epochs', '20');
  await page.click('#train');
  await page.waitForFunction(
    () => /step/.test(document.getElementById('progress')?.textContent ?? ''),
    undefined,
    {
      timeout: 60_000,
    },
  );
  await page.click('#cancel');
  await page.waitForSelector('#train-result[data-state]', { state: 'attached', timeout: 30_000 });
  expect(await page.getAttribute('#train-result', 'data-state')).toBe('cancelled');
  expect(await page.isEnabled('#train')).toBe(true);
  expect(pageErrors).toEqual([]);
  expect(served?.requests).toEqual([]);
});
