// pnpm --filter @peftjs-examples/node-quickstart start [-- --weights file.safetensors --epochs 10]
import { parseArgs } from 'node:util';
import type { BackendPreference } from '@peftjs/core';
import { runQuickstart } from './quickstart.js';

const { values } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
  options: {
    weights: { type: 'string' },
    backend: { type: 'string', default: 'auto' },
    epochs: { type: 'string', default: '5' },
    train: { type: 'string', default: '200' },
  },
});
await runQuickstart({
  ...(values.weights ? { weights: values.weights } : {}),
  backend: values.backend as BackendPreference,
  epochs: Number(values.epochs),
  trainImages: Number(values.train),
});
