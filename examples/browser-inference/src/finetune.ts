/**
 * The fine-tuning panel: data from a bundled mini-VTAB task or from the user's own images, a method, epochs; the
 * worker trains with a live chart and a cancel button; afterwards the test split (bundled tasks) is scored once,
 * a few test images are shown with their true and predicted labels, and the adapter can be downloaded.
 */
import { adapterDownloads, type AdapterConfig } from '@peftjs/core';
import { TrainingChart } from './chart.js';
import { METHODS, TRAIN_DEFAULTS, isMethodName } from './methods.js';
import { decodeRgba, drawRgba, tileRgba, toModelInput } from './pixels.js';
import { cachedBlob, cachedJson } from './prefetch.js';
import type { FromWorker, LabelledPixels, ToWorker } from './protocol.js';
import type { TaskManifest } from './tasks.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const PIXELS = 32 * 32 * 3;

/** A labelled set on the page: normalised pixels plus the RGBA tiles to show. */
interface Split extends LabelledPixels {
  thumbnails: Uint8ClampedArray[];
}

/** Data ready to train on. */
interface Dataset {
  name: string;
  classNames: string[];
  train: Split;
  val: Split;
  test?: Split;
}

function splitOf(tiles: Uint8ClampedArray[], labels: number[]): Split {
  const pixels = new Float32Array(tiles.length * PIXELS);
  for (const [i, tile] of tiles.entries()) pixels.set(toModelInput(tile, 4), i * PIXELS);
  return { pixels, labels: Int32Array.from(labels), thumbnails: tiles };
}

/** A bundled task's split sheet, the first `limit` tiles. */
async function loadSheet(base: string, task: TaskManifest, split: 'train' | 'val' | 'test', limit: number) {
  const sheet = await decodeRgba(await cachedBlob(`${base}tasks/${task.name}/${split}.png`));
  const labels = task.labels[split].slice(0, limit);
  return splitOf(
    labels.map((_, i) => tileRgba(sheet, i, task.size, task.columns)),
    labels,
  );
}

async function bundledDataset(base: string, name: string, trainLimit: number): Promise<Dataset> {
  const task = await cachedJson<TaskManifest>(`${base}tasks/${name}/task.json`);
  return {
    name: `mini-VTAB ${name}`,
    classNames: task.classNames,
    train: await loadSheet(base, task, 'train', trainLimit),
    val: await loadSheet(base, task, 'val', task.labels.val.length),
    test: await loadSheet(base, task, 'test', task.labels.test.length),
  };
}

/** The user's images: one drop box per class. Every fifth image of a class (at least one) is held out. */
class UserClasses {
  private readonly boxes: { name: HTMLInputElement; files: File[]; count: HTMLElement }[] = [];

  constructor(private readonly container: HTMLElement) {
    this.add();
    this.add();
    $('add-class').addEventListener('click', () => this.add());
  }

  add(): void {
    const box = document.createElement('div');
    box.className = 'class-box';
    const name = document.createElement('input');
    name.value = `class ${this.boxes.length + 1}`;
    const input = document.createElement('input');
    input.type = 'file';
    input.accept = 'image/*';
    input.multiple = true;
    const count = document.createElement('span');
    count.textContent = '0 images';
    const entry = { name, files: [] as File[], count };
    const addFiles = (files: Iterable<File>) => {
      entry.files.push(...[...files].filter((f) => f.type.startsWith('image/')));
      count.textContent = `${entry.files.length} images`;
    };
    input.addEventListener('change', () => addFiles(input.files ?? []));
    box.addEventListener('dragover', (event) => event.preventDefault());
    box.addEventListener('drop', (event) => {
      event.preventDefault();
      addFiles(event.dataTransfer?.files ?? []);
    });
    box.append(name, input, count);
    this.container.append(box);
    this.boxes.push(entry);
  }

  async dataset(): Promise<Dataset> {
    const used = this.boxes.filter((b) => b.files.length > 0);
    if (used.length < 2) throw new Error('add images to at least two classes');
    const train: { tiles: Uint8ClampedArray[]; labels: number[] } = { tiles: [], labels: [] };
    const val: { tiles: Uint8ClampedArray[]; labels: number[] } = { tiles: [], labels: [] };
    for (const [label, box] of used.entries()) {
      if (box.files.length < 2)
        throw new Error(`"${box.name.value}" needs at least 2 images (1 is held out)`);
      for (const [i, file] of box.files.entries()) {
        const bitmap = await createImageBitmap(file);
        const tile = drawRgba(bitmap, 32, 32).data;
        bitmap.close();
        const target = i % 5 === 4 || (i === box.files.length - 1 && box.files.length < 5) ? val : train;
        target.tiles.push(tile);
        target.labels.push(label);
      }
    }
    return {
      name: 'your images',
      classNames: used.map((b) => b.name.value),
      train: splitOf(train.tiles, train.labels),
      val: splitOf(val.tiles, val.labels),
    };
  }
}

/** Shows the first test images with their true and predicted labels. */
function showPredictions(dataset: Dataset, predictions: readonly number[]): void {
  const list = $('test-samples');
  list.replaceChildren();
  const test = dataset.test;
  if (!test) return;
  for (let i = 0; i < Math.min(12, predictions.length); i++) {
    const truth = test.labels[i] as number;
    const predicted = predictions[i] as number;
    const canvas = document.createElement('canvas');
    canvas.width = 32;
    canvas.height = 32;
    canvas
      .getContext('2d')
      ?.putImageData(
        new ImageData(new Uint8ClampedArray(test.thumbnails[i] as Uint8ClampedArray), 32, 32),
        0,
        0,
      );
    const figure = document.createElement('figure');
    figure.className = truth === predicted ? 'sample right' : 'sample wrong';
    const caption = document.createElement('figcaption');
    caption.textContent = `true ${dataset.classNames[truth]} · predicted ${dataset.classNames[predicted]} ${truth === predicted ? '✓' : '✗'}`;
    figure.append(canvas, caption);
    list.append(figure);
  }
}

function offerDownloads(configText: string, weights: Uint8Array): void {
  const links = $('downloads');
  for (const old of links.querySelectorAll('a')) URL.revokeObjectURL(old.href);
  links.replaceChildren('Download the adapter (save both files in one folder): ');
  const config = JSON.parse(configText) as AdapterConfig;
  for (const file of adapterDownloads({ config, configText, weights })) {
    const link = document.createElement('a');
    link.href = URL.createObjectURL(file.blob);
    link.download = file.name;
    link.textContent = file.name;
    link.dataset.file = file.name;
    links.append(link, ' ');
  }
}

/** Wires the panel to the worker; `onTrained` hands the trained model's class names to the page's classifier. */
export function setUpFineTuning(
  base: string,
  worker: Worker,
  onTrained: (classNames: string[]) => void,
): (message: FromWorker) => void {
  const chart = new TrainingChart($<HTMLCanvasElement>('chart'));
  const users = new UserClasses($('user-classes'));
  const send = (message: ToWorker, transfer: Transferable[] = []) => worker.postMessage(message, transfer);
  const progress = $('progress');
  const result = $('train-result');
  const trainButton = $<HTMLButtonElement>('train');
  const cancelButton = $<HTMLButtonElement>('cancel');
  let dataset: Dataset | null = null;
  let stepsPerEpoch = 1;

  trainButton.addEventListener('click', async () => {
    trainButton.disabled = true;
    for (const key of Object.keys(result.dataset)) delete result.dataset[key];
    result.textContent = '';
    $('downloads').replaceChildren();
    try {
      const source = $<HTMLSelectElement>('task').value;
      const limit = Number($<HTMLInputElement>('train-count').value);
      progress.textContent = 'reading images…';
      dataset = source === 'user' ? await users.dataset() : await bundledDataset(base, source, limit);
      const method = $<HTMLSelectElement>('method').value;
      if (!isMethodName(method)) throw new Error(`unknown method ${method}`);
      const epochs = Number($<HTMLInputElement>('epochs').value);
      stepsPerEpoch = Math.floor(dataset.train.labels.length / TRAIN_DEFAULTS.batchSize);
      if (stepsPerEpoch === 0) throw new Error(`need at least ${TRAIN_DEFAULTS.batchSize} training images`);
      chart.reset(stepsPerEpoch * epochs);
      const strip = (s: Split): LabelledPixels => ({ pixels: s.pixels.slice(), labels: s.labels.slice() });
      const message: ToWorker = {
        type: 'train',
        method,
        epochs,
        seed: 1,
        numClasses: dataset.classNames.length,
        train: strip(dataset.train),
        val: strip(dataset.val),
        ...(dataset.test ? { test: strip(dataset.test) } : {}),
      };
      const buffers = [message.train, message.val, ...(message.test ? [message.test] : [])].map(
        (s) => s.pixels.buffer,
      );
      cancelButton.disabled = false;
      progress.textContent = `training ${METHODS[method].label} on ${dataset.train.labels.length} images of ${dataset.name}…`;
      send(message, buffers);
    } catch (error) {
      progress.textContent = `error: ${(error as Error).message}`;
      trainButton.disabled = false;
    }
  });
  cancelButton.addEventListener('click', () => {
    send({ type: 'cancel' });
    cancelButton.disabled = true;
  });

  return (message) => {
    if (message.type === 'phase') progress.textContent = message.text;
    if (message.type === 'step') {
      chart.addLoss(message.step, message.loss);
      const speed =
        message.imagesPerSecond === null ? '' : `, ${message.imagesPerSecond.toFixed(1)} images/s`;
      progress.textContent = `epoch ${message.epoch + 1}, step ${message.step + 1}: loss ${message.loss.toFixed(3)}${speed}`;
    }
    if (message.type === 'eval') chart.addAccuracy((message.epoch + 1) * stepsPerEpoch, message.top1);
    if (message.type === 'cancelled' || message.type === 'error') {
      progress.textContent = message.type === 'cancelled' ? 'cancelled' : `error: ${message.message}`;
      result.dataset.state = message.type;
      trainButton.disabled = false;
      cancelButton.disabled = true;
    }
    if (message.type === 'trained' && dataset) {
      const test = message.test;
      result.textContent =
        `${message.trainableWithoutHead.toLocaleString('en-US')} trainable parameters + head; epoch ${message.bestEpoch + 1} kept ` +
        `(best validation accuracy); ${test ? `test top-1 ${(test.top1 * 100).toFixed(1)} % on ${test.predictions.length} images; ` : ''}` +
        `${message.imagesPerSecond.toFixed(1)} training images/s (${message.trainSeconds.toFixed(1)} s with validation).`;
      if (test) {
        result.dataset.top1 = String(test.top1);
        result.dataset.predictions = JSON.stringify(test.predictions);
        showPredictions(dataset, test.predictions);
      }
      result.dataset.imagesPerSecond = message.imagesPerSecond.toFixed(2);
      result.dataset.trainSeconds = message.trainSeconds.toFixed(2);
      offerDownloads(message.configText, message.weights);
      progress.textContent = 'done: drop an image below to classify it with this model';
      result.dataset.state = 'trained';
      trainButton.disabled = false;
      cancelButton.disabled = true;
      onTrained(dataset.classNames);
    }
  };
}
