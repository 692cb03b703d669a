/// <reference types="vite/client" />
/**
 * The page: the bundled backbone with the bundled SHIP digit adapter (src/digits.ts), fine-tuning in a worker
 * (src/finetune.ts, src/worker.ts), and a classifier for dropped images using whichever model is active — the
 * digit adapter, the one just trained, or adapter files the user loads. State for tests is mirrored in data-*
 * attributes.
 */
import { loadVitFromBytes } from '@peftjs/backbone';
import { BASELINE_PLUGIN_FACTORIES } from '@peftjs/baselines';
import {
  type BackendPreference,
  BACKEND_PREFERENCES,
  type PeftModel,
  loadAdapterFromFiles,
} from '@peftjs/core';
import { SHIP_PLUGIN_FACTORIES } from '@peftjs/ship';
import { describeBackend, setupBackend } from './backend.js';
import { argMax, predictOne, showDigits } from './digits.js';
import { setUpFineTuning } from './finetune.js';
import { drawRgba, toModelInput } from './pixels.js';
import { prefetchTasks } from './prefetch.js';
import type { FromWorker, ToWorker } from './protocol.js';
import { BUNDLED_TASKS } from './tasks.js';

const base = import.meta.env.BASE_URL;
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status');
const result = $('result');

/** The model the drop zone uses. */
interface Classifier {
  name: string;
  classNames: string[];
  logits(pixels: Float32Array): Promise<number[]>;
}
let active: Classifier | null = null;

function setActive(classifier: Classifier): void {
  active = classifier;
  $('active-model').textContent = classifier.name;
}

function mainThreadClassifier(name: string, model: PeftModel, classNames: string[]): Classifier {
  return { name, classNames, logits: async (pixels) => predictOne(model, pixels) };
}

async function classifyFile(file: Blob, name: string): Promise<void> {
  for (const key of Object.keys(result.dataset)) delete result.dataset[key];
  if (!active) throw new Error('no model loaded yet');
  const bitmap = await createImageBitmap(file);
  const rgba = drawRgba(bitmap, 32, 32);
  bitmap.close();
  $<HTMLCanvasElement>('preview').getContext('2d')?.putImageData(rgba, 0, 0);
  const started = performance.now();
  const logits = await active.logits(toModelInput(rgba.data, 4));
  const ms = performance.now() - started;
  const label = argMax(logits);
  result.textContent = `${name}: ${active.classNames[label] ?? `class ${label}`} (${active.name}, ${ms.toFixed(1)} ms)`;
  result.dataset.file = name;
  result.dataset.label = String(label);
}

function classifyAndShow(file: Blob, name: string): void {
  classifyFile(file, name).catch((error: unknown) => {
    result.textContent = `${name}: ${(error as Error).message}`;
    result.dataset.error = 'true';
  });
}

function startWorker(prefer: BackendPreference, vitUrl: string): void {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  const send = (message: ToWorker) => worker.postMessage(message);
  const pending = new Map<number, (logits: number[]) => void>();
  let nextId = 0;
  const onPanelMessage = setUpFineTuning(base, worker, (classNames) =>
    setActive({
      name: 'the model trained here',
      classNames,
      logits: (pixels) =>
        new Promise((resolve) => {
          const id = nextId++;
          pending.set(id, resolve);
          worker.postMessage({ type: 'classify', id, pixels } satisfies ToWorker);
        }),
    }),
  );
  worker.onmessage = (event: MessageEvent<FromWorker>) => {
    const message = event.data;
    if (message.type === 'ready') {
      $('worker-status').textContent =
        `worker backend: ${message.description} (native kernels: ${message.native})`;
      $('worker-status').dataset.backend = message.backend;
      $<HTMLButtonElement>('train').disabled = false;
    } else if (message.type === 'classified') {
      pending.get(message.id)?.(message.logits);
      pending.delete(message.id);
    } else if (message.type === 'error' && pending.size > 0) {
      result.textContent = message.message;
      result.dataset.error = 'true';
    } else onPanelMessage(message);
  };
  send({ type: 'init', prefer, backboneUrl: vitUrl });
}

function wireInputs(vit: Parameters<typeof loadAdapterFromFiles>[0]): void {
  const drop = $('drop');
  drop.addEventListener('dragover', (event) => event.preventDefault());
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    const file = event.dataTransfer?.files[0];
    if (file) classifyAndShow(file, file.name);
  });
  $<HTMLInputElement>('file').addEventListener('change', (event) => {
    const file = (event.target as HTMLInputElement).files?.[0];
    if (file) classifyAndShow(file, file.name);
  });
  $<HTMLInputElement>('adapter-files').addEventListener('change', async (event) => {
    const files = (event.target as HTMLInputElement).files ?? [];
    const out = $('adapter-status');
    try {
      const factories = { ...SHIP_PLUGIN_FACTORIES, ...BASELINE_PLUGIN_FACTORIES };
      const model = await loadAdapterFromFiles(vit, files, { factories });
      const classes = model.config.numClasses;
      setActive(
        mainThreadClassifier(
          'the adapter you loaded',
          model,
          Array.from({ length: classes }, (_, i) => `class ${i}`),
        ),
      );
      out.textContent = `loaded: ${model.plugins.map((p) => p.name).join(', ') || 'head only'}, ${classes} classes`;
    } catch (error) {
      out.textContent = `refused: ${(error as Error).message}`;
    }
  });
  const taskSelect = $<HTMLSelectElement>('task');
  for (const task of BUNDLED_TASKS)
    taskSelect.add(new Option(`mini-VTAB: ${task.name} (${task.classNames.length} classes)`, task.name));
  taskSelect.add(new Option('your images (below)', 'user'));
  taskSelect.addEventListener('change', () => {
    $('user-data').hidden = taskSelect.value !== 'user';
  });
}

async function main(): Promise<void> {
  const wanted = new URLSearchParams(location.search).get('backend') ?? 'auto';
  if (!(BACKEND_PREFERENCES as readonly string[]).includes(wanted))
    throw new Error(`unknown backend "${wanted}"`);
  const prefer = wanted as BackendPreference;
  const choice = await setupBackend(prefer, (line) => console.info(line));
  status.textContent = `backend ${describeBackend(choice)}; loading the backbone…`;
  status.dataset.backend = choice.backend;
  const vitUrl = new URL(`${base}model/vit.safetensors`, location.href).href;
  startWorker(prefer, vitUrl);
  const response = await fetch(vitUrl);
  if (!response.ok) throw new Error(`GET ${vitUrl}: HTTP ${response.status}`);
  const { model: vit } = loadVitFromBytes(new Uint8Array(await response.arrayBuffer()), {
    source: 'vit.safetensors',
  });
  wireInputs(vit);
  const [digits] = await Promise.all([
    showDigits(vit, base),
    prefetchTasks(
      base,
      BUNDLED_TASKS.map((t) => t.name),
    ),
  ]);
  setActive(
    mainThreadClassifier(
      'the SHIP digit adapter',
      digits,
      Array.from({ length: 10 }, (_, i) => String(i)),
    ),
  );
  status.textContent = `backend ${describeBackend(choice)}; pretrained tiny ViT (depth 12, width 128, 32×32) loaded`;
  status.dataset.ready = 'true';
}

main().catch((error: unknown) => {
  status.textContent = `error: ${error instanceof Error ? error.message : String(error)}`;
  status.dataset.error = 'true';
  console.error(error);
});
