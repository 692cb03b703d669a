// pnpm --filter @peftjs-examples/ablation-study start [-- --epochs 10 --backend wasm]
import { parseArgs } from 'node:util';
import type { BackendPreference } from '@peftjs/core';
import { markdownTable, runAblation } from './ablation.js';

const { values } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
  options: {
    backend: { type: 'string', default: 'auto' },
    epochs: { type: 'string', default: '10' },
    train: { type: 'string', default: '200' },
  },
});
const rows = await runAblation({
  backend: values.backend as BackendPreference,
  epochs: Number(values.epochs),
  trainImages: Number(values.train),
});
console.log(markdownTable(rows));
