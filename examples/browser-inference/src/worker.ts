/**
 * The training worker: the bundled backbone, a model built with one of METHODS, and @peftjs/train's `train()` —
 * the library's own loop (seeded batches, AdamW, cosine schedule, per-epoch validation, best-epoch selection) — on
 * the backend `initBackend` picks. The page stays responsive; cancelling aborts `train()` through its signal.
 */
import { loadVitFromBytes } from '@peftjs/backbone';
import { type PeftModel, PeftError, createPeftModel, serializeAdapter, tf } from '@peftjs/core';
import { type TrainingData, arrayData, evaluate, train } from '@peftjs/train';
import { describeBackend, setupBackend } from './backend.js';
import { METHODS, TRAIN_DEFAULTS } from './methods.js';
import type { FromWorker, LabelledPixels, ToWorker } from './protocol.js';
import { throughputMeter } from './throughput.js';

type TrainRequest = Extract<ToWorker, { type: 'train' }>;
const SHAPE = [32, 32, 3] as const;
const scope = self as unknown as {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
};
const post = (message: FromWorker, transfer: Transferable[] = []) => scope.postMessage(message, transfer);

let vit: ReturnType<typeof loadVitFromBytes>['model'] | null = null;
let model: PeftModel | null = null;
let running: AbortController | null = null;

/** Lets queued messages (a cancel) run: a macrotask through a MessageChannel, without setTimeout's 4 ms clamp. */
function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/** `arrayData` whose batches yield to the event loop first, so `cancel` arrives while `train()` runs. */
function responsive(data: TrainingData): TrainingData {
  return {
    size: data.size,
    numClasses: data.numClasses,
    async *batches(options) {
      for await (const batch of data.batches(options)) {
        await yieldToEvents();
        yield batch;
      }
    },
  };
}

const dataOf = (split: LabelledPixels, numClasses: number) =>
  arrayData(split.pixels, split.labels, SHAPE, numClasses);

async function init(request: Extract<ToWorker, { type: 'init' }>): Promise<void> {
  const choice = await setupBackend(request.prefer, (line) => post({ type: 'log', line }));
  const response = await fetch(request.backboneUrl);
  if (!response.ok) throw new Error(`GET ${request.backboneUrl}: HTTP ${response.status}`);
  vit = loadVitFromBytes(new Uint8Array(await response.arrayBuffer()), { source: request.backboneUrl }).model;
  const native = choice.native.installed ? choice.native.isa : choice.native.reason;
  post({ type: 'ready', backend: choice.backend, description: describeBackend(choice), native });
}

async function runTraining(request: TrainRequest): Promise<void> {
  if (!vit) throw new Error('the worker has no backbone yet');
  const method = METHODS[request.method];
  model?.dispose();
  model = null;
  const built = createPeftModel(vit, method.plugins(), {
    seed: request.seed,
    numClasses: request.numClasses,
  });
  const controller = new AbortController();
  running = controller;
  try {
    const trainData = dataOf(request.train, request.numClasses);
    if (built.plugins.some((p) => p.prepare)) {
      post({
        type: 'phase',
        text: `preparing ${built.plugins
          .filter((p) => p.prepare)
          .map((p) => p.name)
          .join(', ')}`,
      });
      await built.prepare({ size: trainData.size, batches: () => prepareBatches(trainData) });
    }
    const meter = throughputMeter(TRAIN_DEFAULTS.batchSize);
    const started = performance.now();
    const result = await train(
      built,
      { train: responsive(trainData), val: dataOf(request.val, request.numClasses) },
      {
        ...TRAIN_DEFAULTS,
        epochs: request.epochs,
        lr: method.lr,
        seed: request.seed,
        signal: controller.signal,
        onEvent: (event) => {
          const imagesPerSecond = meter.onEvent(event);
          if (event.type === 'epoch-start')
            post({ type: 'phase', text: `epoch ${event.epoch + 1} of ${request.epochs}` });
          if (event.type === 'step') {
            const steps = Math.floor(request.train.labels.length / TRAIN_DEFAULTS.batchSize);
            post({
              type: 'step',
              epoch: event.epoch,
              step: event.step,
              steps,
              loss: event.loss,
              imagesPerSecond,
            });
          }
          if (event.type === 'eval') post({ type: 'eval', epoch: event.epoch, top1: event.metrics.top1 });
        },
      },
    );
    const trainSeconds = (performance.now() - started) / 1000;
    let test: { top1: number; predictions: number[] } | null = null;
    if (request.test) {
      post({ type: 'phase', text: 'scoring the test split' });
      const metrics = await evaluate(built, dataOf(request.test, request.numClasses), { batchSize: 100 });
      test = { top1: metrics.top1, predictions: metrics.predictions };
    }
    const { configText, weights } = serializeAdapter(built);
    model = built;
    post(
      {
        type: 'trained',
        bestEpoch: result.best.epoch,
        test,
        imagesPerSecond: meter.imagesPerSecond(),
        trainSeconds,
        trainableWithoutHead: built.parameterReport().trainableWithoutHead,
        configText,
        weights,
      },
      [weights.buffer],
    );
  } catch (error) {
    built.dispose();
    if (controller.signal.aborted) post({ type: 'cancelled' });
    else throw error;
  } finally {
    running = null;
  }
}

async function* prepareBatches(data: TrainingData) {
  const options = { batchSize: 64, shuffle: false, seed: 0, epoch: 0, dropLast: false };
  for await (const batch of data.batches(options)) yield { images: batch.images };
}

function classify(request: Extract<ToWorker, { type: 'classify' }>): void {
  if (!model) throw new Error('train a model first');
  const trained = model;
  const logits = tf.tidy(() => trained.predict(tf.tensor4d(request.pixels, [1, ...SHAPE])));
  const values = Array.from(logits.dataSync());
  logits.dispose();
  post({ type: 'classified', id: request.id, logits: values });
}

scope.onmessage = (event) => {
  const request = event.data;
  const fail = (error: unknown) => {
    const message =
      error instanceof PeftError
        ? `${error.code}: ${error.message}`
        : String((error as Error)?.message ?? error);
    post({ type: 'error', message });
  };
  try {
    if (request.type === 'init') init(request).catch(fail);
    else if (request.type === 'train') runTraining(request).catch(fail);
    else if (request.type === 'cancel') running?.abort(new Error('cancelled by the user'));
    else if (request.type === 'classify') classify(request);
  } catch (error) {
    fail(error);
  }
};
