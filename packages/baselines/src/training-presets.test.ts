import { perBlock, trainingSuite } from '@peftjs/test-fixtures';
import { adapter } from './adapter.js';
import { bitfit } from './bitfit.js';
import { fullFineTuning } from './full-fine-tuning.js';
import { linearProbe } from './linear-probe.js';
import { vpt } from './vpt.js';

const houlsbyNames = (i: number) =>
  ['attn', 'mlp'].flatMap((site) =>
    ['down.weight', 'down.bias', 'up.weight', 'up.bias'].map((n) => `adapter.blocks.${i}.${site}.${n}`),
  );

await trainingSuite('presets and prompts train on MNIST', [
  { label: 'linear probe', plugins: () => [linearProbe()], learningRate: 0.02, expected: () => [] },
  {
    label: 'full fine-tuning',
    plugins: () => [fullFineTuning()],
    learningRate: 0.003,
    expected: (names) => names,
  },
  {
    label: 'BitFit',
    plugins: () => [bitfit()],
    learningRate: 0.02,
    expected: (names) => names.filter((n) => n.endsWith('.bias')),
  },
  {
    label: 'VPT shallow',
    plugins: () => [vpt({ mode: 'shallow', tokens: 4 })],
    learningRate: 0.02,
    expected: () => ['vpt.prompt'],
  },
  {
    label: 'VPT deep with prompt dropout',
    plugins: () => [vpt({ mode: 'deep', tokens: 4, dropout: 0.1 })],
    learningRate: 0.02,
    expected: () => perBlock((i) => [`vpt.prompt.${i}`]),
  },
  {
    label: 'VPT deep + Houlsby adapter together',
    plugins: () => [vpt({ mode: 'deep', tokens: 4 }), adapter({ kind: 'houlsby', bottleneck: 8 })],
    learningRate: 0.02,
    expected: () => [...perBlock((i) => [`vpt.prompt.${i}`]), ...perBlock(houlsbyNames)],
  },
]);
