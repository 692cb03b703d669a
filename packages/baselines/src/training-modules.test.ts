import { trainingCases, trainingSuite } from './training-cases.js';

await trainingSuite(
  'LoRA, adapters and SSF train on MNIST',
  trainingCases([
    'LoRA on q, v',
    'LoRA on every target with dropout',
    'Houlsby adapter',
    'AdaptFormer',
    'SSF',
    'LoRA + BitFit together',
  ]),
);
