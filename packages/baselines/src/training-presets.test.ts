import { trainingCases, trainingSuite } from './training-cases.js';

await trainingSuite(
  'presets and prompts train on MNIST',
  trainingCases([
    'linear probe',
    'full fine-tuning',
    'BitFit',
    'VPT shallow',
    'VPT deep with prompt dropout',
    'VPT deep + Houlsby adapter together',
  ]),
);
