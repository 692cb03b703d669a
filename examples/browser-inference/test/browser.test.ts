/**
 * End to end: build the page with Vite, serve dist/ on 127.0.0.1, drive Debian's Chromium with playwright-core,
 * click a bundled sample and check the page's predicted label against Node's prediction for the same PNG bytes
 * with the same weights and adapter (loaded the Node way: loadVitFromBytes + loadAdapter).
 *
 * Needs /usr/bin/chromium (`apt-get install -y chromium`); skipped with a printed reason when it is missing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadVitFromBytes } from '@peftjs/backbone';
import { initBackend, loadAdapter, tf } from '@peftjs/core';
import { SHIP_PLUGIN_FACTORIES } from '@peftjs/ship';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeGrayPng } from '../src/png.js';
import { IMAGE_SIZE, toInput } from '../src/preprocess.js';

const CHROMIUM = '/usr/bin/chromium';
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(
    `[browser-inference] SKIPPED: ${CHROMIUM} not found. Install it with: apt-get install -y chromium`,
  );
}

const MIME: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.png': 'image/png',
  '.safetensors': 'application/octet-stream',
};

function serve(dir: string): Promise<Server> {
  const server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname);
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
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

let server: Server | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  if (!hasChromium) return;
  const vite = join(dirname(fileURLToPath(import.meta.resolve('vite/package.json'))), 'bin', 'vite.js');
  execFileSync(process.execPath, [vite, 'build', '--logLevel', 'error'], { cwd: root, stdio: 'inherit' });
  server = await serve(dist);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

async function nodeLogits(sample: string): Promise<number[]> {
  await initBackend({ prefer: 'wasm', log: false });
  const { model: vit } = loadVitFromBytes(readFileSync(join(root, 'public', 'model', 'vit.safetensors')));
  const model = await loadAdapter(vit, join(root, 'public', 'model', 'adapter'), {
    factories: SHIP_PLUGIN_FACTORIES,
  });
  const { pixels } = decodeGrayPng(readFileSync(join(root, 'public', 'samples', sample)));
  const input = tf.tensor4d(toInput(pixels), [1, IMAGE_SIZE, IMAGE_SIZE, 1]);
  const logits = model.predict(input);
  const values = Array.from(await logits.data());
  tf.dispose([input, logits]);
  model.dispose();
  vit.dispose();
  return values;
}

const argMax = (values: readonly number[]) => values.indexOf(Math.max(...values));

it.skipIf(!hasChromium)('classifies a bundled sample in Chromium exactly as Node does', async () => {
  const samples = JSON.parse(readFileSync(join(root, 'public', 'samples', 'index.json'), 'utf8')) as {
    file: string;
    predicted: number;
  }[];
  const { port } = server!.address() as AddressInfo;
  const page = await browser!.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForSelector('#status[data-ready="true"], #status[data-error="true"]', { timeout: 60_000 });
  expect(await page.getAttribute('#status', 'data-error'), await page.textContent('#status')).toBeNull();
  const backend = await page.getAttribute('#status', 'data-backend');
  expect(backend).toBe('wasm');

  for (const sample of samples) {
    await page.click(`button[data-sample="${sample.file}"]`);
    // This sample's result, never the previous one's (the page clears it on click).
    await page.waitForSelector(`#result[data-file="${sample.file}"][data-label], #result[data-error]`, {
      timeout: 30_000,
    });
    expect(await page.getAttribute('#result', 'data-error'), await page.textContent('#result')).toBeNull();
    const pageLogits = JSON.parse((await page.getAttribute('#result', 'data-logits')) ?? 'null') as number[];
    const pageLabel = Number(await page.getAttribute('#result', 'data-label'));
    const ms = Number(await page.getAttribute('#result', 'data-ms'));
    const node = await nodeLogits(sample.file);
    const worst = Math.max(...node.map((v, i) => Math.abs(v - (pageLogits[i] as number))));
    console.log(
      `${sample.file}: browser (${backend}) ${pageLabel} in ${ms.toFixed(1)} ms, node ${argMax(node)}, ` +
        `max |logit difference| ${worst.toExponential(2)}`,
    );
    expect(pageLogits).toHaveLength(node.length);
    // Same weights, same bytes, different kernels (stock tfjs-wasm in the page, native GEMM in Node): float32 noise.
    expect(worst).toBeLessThan(1e-4);
    expect(pageLabel).toBe(argMax(pageLogits));
    expect(argMax(node)).toBe(sample.predicted); // what the generator saw when it chose the sample
    expect(ms).toBeGreaterThan(0);
  }
  expect(errors).toEqual([]);
  await page.close();
});
