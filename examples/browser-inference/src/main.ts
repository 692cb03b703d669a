/**
 * The page: set up a tfjs backend (wasm, else webgl, else cpu) directly — @peftjs/core's initBackend uses
 * node:module — load the ViT from bytes, load the SHIP adapter over HTTP, then classify a bundled sample or a
 * dropped/picked image. State for tests is mirrored in data-* attributes.
 */
import { loadVitFromBytes } from '@peftjs/backbone';
import { type PeftModel, tf } from '@peftjs/core';
import { SHIP_PLUGIN_FACTORIES } from '@peftjs/ship';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { fetchBytes, loadAdapterFromUrl } from './adapter-browser.js';
import { IMAGE_SIZE, toInput } from './preprocess.js';

const base = import.meta.env.BASE_URL;
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status');
const result = $('result');
const canvas = $<HTMLCanvasElement>('preview');
const context = canvas.getContext('2d', { willReadFrequently: true })!;

async function setupBackend(): Promise<string> {
  setWasmPaths({
    'tfjs-backend-wasm.wasm': wasmPlain,
    'tfjs-backend-wasm-simd.wasm': wasmSimd,
    'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
  });
  const wanted = new URLSearchParams(location.search).get('backend');
  for (const name of wanted ? [wanted] : ['wasm', 'webgl', 'cpu']) {
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return name;
      }
    } catch (error) {
      console.warn(`backend ${name} unavailable:`, error);
    }
  }
  throw new Error('no tfjs backend could be initialised');
}

/** Draws any image into the 28×28 canvas and returns its gray levels (mean of RGB). */
function grayPixels(image: CanvasImageSource): Uint8Array {
  context.clearRect(0, 0, IMAGE_SIZE, IMAGE_SIZE);
  context.drawImage(image, 0, 0, IMAGE_SIZE, IMAGE_SIZE);
  const rgba = context.getImageData(0, 0, IMAGE_SIZE, IMAGE_SIZE).data;
  const gray = new Uint8Array(IMAGE_SIZE * IMAGE_SIZE);
  for (let i = 0; i < gray.length; i++) {
    gray[i] = Math.round(
      ((rgba[4 * i] as number) + (rgba[4 * i + 1] as number) + (rgba[4 * i + 2] as number)) / 3,
    );
  }
  return gray;
}

/** Classifies one image; clears the previous result first so nothing can read a stale label meanwhile. */
async function classify(model: PeftModel, image: Blob | Promise<Blob>, name: string): Promise<void> {
  for (const key of ['label', 'ms', 'file', 'logits', 'error']) delete result.dataset[key];
  const bitmap = await createImageBitmap(await image);
  const gray = grayPixels(bitmap);
  bitmap.close();
  const start = performance.now();
  const input = tf.tensor4d(toInput(gray), [1, IMAGE_SIZE, IMAGE_SIZE, 1]);
  const logits = model.predict(input);
  const values = Array.from(await logits.data());
  const ms = performance.now() - start;
  tf.dispose([input, logits]);
  const label = values.indexOf(Math.max(...values));
  result.textContent = `${name}: predicted ${label} in ${ms.toFixed(1)} ms`;
  result.dataset.ms = ms.toFixed(3);
  result.dataset.logits = JSON.stringify(values);
  result.dataset.file = name;
  // Last: the label is what tests wait for.
  result.dataset.label = String(label);
}

/** Runs a classification from an event handler; a failure is shown on the page (and logged), never dropped. */
function classifyAndShow(model: PeftModel, image: Blob | Promise<Blob>, name: string): void {
  classify(model, image, name).catch((error: unknown) => {
    result.textContent = `${name}: ${error instanceof Error ? error.message : String(error)}`;
    result.dataset.error = 'true';
    console.error(error);
  });
}

async function main(): Promise<void> {
  const backend = await setupBackend();
  status.textContent = `backend ${backend}; loading model…`;
  const { model: vit } = loadVitFromBytes(await fetchBytes(`${base}model/vit.safetensors`), {
    source: 'vit.safetensors',
  });
  const model = await loadAdapterFromUrl(vit, `${base}model/adapter/`, SHIP_PLUGIN_FACTORIES);
  model.enablePromptCache();
  const report = model.parameterReport();
  status.textContent = `backend ${backend}; SHIP adapter loaded (${report.trainableWithoutHead} prompt parameters)`;
  status.dataset.backend = backend;

  const samples = (await (await fetch(`${base}samples/index.json`)).json()) as {
    file: string;
    label: number;
  }[];
  const list = $('samples');
  for (const sample of samples) {
    const button = document.createElement('button');
    button.dataset.sample = sample.file;
    button.title = `MNIST digit, true label ${sample.label}`;
    const img = document.createElement('img');
    img.src = `${base}samples/${sample.file}`;
    img.alt = sample.file;
    button.append(img);
    button.addEventListener('click', () => {
      const blob = fetchBytes(`${base}samples/${sample.file}`).then((bytes) => new Blob([bytes]));
      classifyAndShow(model, blob, sample.file);
    });
    list.append(button);
  }

  const drop = $('drop');
  drop.addEventListener('dragover', (event) => event.preventDefault());
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    const file = event.dataTransfer?.files[0];
    if (file) classifyAndShow(model, file, file.name);
  });
  $<HTMLInputElement>('file').addEventListener('change', (event) => {
    const file = (event.target as HTMLInputElement).files?.[0];
    if (file) classifyAndShow(model, file, file.name);
  });
  status.dataset.ready = 'true';
}

main().catch((error: unknown) => {
  status.textContent = `error: ${error instanceof Error ? error.message : String(error)}`;
  status.dataset.error = 'true';
  console.error(error);
});
