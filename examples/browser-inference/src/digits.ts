/**
 * The digit demo: the bundled backbone with the bundled SHIP adapter (public/model/adapter, trained by
 * scripts/train-digits.ts), loaded with @peftjs/core's `loadAdapterFromUrl` — the checks `loadAdapter` makes in
 * Node, base fingerprint included. Every bundled sample is classified on load and shown with its true label.
 */
import type { VisionTransformer } from '@peftjs/backbone';
import { type PeftModel, loadAdapterFromUrl, tf } from '@peftjs/core';
import { SHIP_PLUGIN_FACTORIES } from '@peftjs/ship';
import { decodeRgba, toModelInput } from './pixels.js';

/** public/samples/index.json. */
interface Sample {
  file: string;
  mnistTestIndex: number;
  label: number;
}

/** public/samples/metrics.json (written by scripts/train-digits.ts). */
export interface DigitMetrics {
  task: string;
  method: string;
  train: string;
  testTop1: number;
  testCount: number;
  samplesCorrect: number;
  samplesCount: number;
  trainableWithoutHead: number;
}

/** Logits of one normalised 32×32×3 image. */
export function predictOne(model: PeftModel, pixels: Float32Array): number[] {
  const logits = tf.tidy(() => model.predict(tf.tensor4d(pixels, [1, 32, 32, 3])));
  const values = Array.from(logits.dataSync());
  logits.dispose();
  return values;
}

/** Index of the largest value. */
export const argMax = (values: readonly number[]) => values.indexOf(Math.max(...values));

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

/** Loads the adapter, states its accuracy, classifies every sample and shows it beside its true label. */
export async function showDigits(vit: VisionTransformer, base: string): Promise<PeftModel> {
  const model = await loadAdapterFromUrl(vit, `${base}model/adapter/`, { factories: SHIP_PLUGIN_FACTORIES });
  model.enablePromptCache();
  const metrics = await getJson<DigitMetrics>(`${base}samples/metrics.json`);
  const samples = await getJson<Sample[]>(`${base}samples/index.json`);
  const summary = document.getElementById('digits-summary') as HTMLElement;
  summary.textContent =
    `SHIP adapter (${metrics.trainableWithoutHead.toLocaleString('en-US')} prompt parameters + head), ` +
    `trained on ${metrics.train}: ${(metrics.testTop1 * 100).toFixed(2)} % top-1 on the ` +
    `${metrics.testCount.toLocaleString('en-US')} MNIST test digits; ${metrics.samplesCorrect} of ` +
    `${metrics.samplesCount} samples below are right (measured in Node).`;
  summary.dataset.testTop1 = String(metrics.testTop1);
  summary.dataset.statedCorrect = String(metrics.samplesCorrect);
  const list = document.getElementById('samples') as HTMLElement;
  let correct = 0;
  for (const sample of samples) {
    const url = `${base}samples/${sample.file}`;
    const response = await fetch(url);
    const rgba = await decodeRgba(await response.blob());
    const logits = predictOne(model, toModelInput(rgba.data, 4));
    const predicted = argMax(logits);
    if (predicted === sample.label) correct++;
    const figure = document.createElement('figure');
    figure.className = predicted === sample.label ? 'sample right' : 'sample wrong';
    figure.dataset.sample = sample.file;
    figure.dataset.label = String(sample.label);
    figure.dataset.logits = JSON.stringify(logits);
    const img = document.createElement('img');
    img.src = url;
    img.alt = `MNIST test digit ${sample.mnistTestIndex}`;
    const caption = document.createElement('figcaption');
    caption.textContent = `true ${sample.label} · predicted ${predicted} ${predicted === sample.label ? '✓' : '✗'}`;
    figure.append(img, caption);
    list.append(figure);
    figure.dataset.predicted = String(predicted);
  }
  list.dataset.correct = String(correct);
  list.dataset.count = String(samples.length);
  return model;
}
