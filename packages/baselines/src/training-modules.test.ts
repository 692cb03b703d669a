import { perBlock, trainingSuite } from '@peftjs/test-fixtures';
import { adapter } from './adapter.js';
import { bitfit } from './bitfit.js';
import { lora } from './lora.js';
import { ssf } from './ssf.js';

const adapterNames = (site: string) => (i: number) =>
  ['down.weight', 'down.bias', 'up.weight', 'up.bias'].map((n) => `adapter.blocks.${i}.${site}.${n}`);
const loraNames = (targets: string[]) => (i: number) =>
  targets.flatMap((t) => [`lora.blocks.${i}.${t}.lora_A`, `lora.blocks.${i}.${t}.lora_B`]);
const ALL_TARGETS = ['q', 'k', 'v', 'proj', 'fc1', 'fc2'];

await trainingSuite('LoRA, adapters and SSF train on MNIST', [
  {
    label: 'LoRA on q, v',
    plugins: () => [lora({ rank: 4, alpha: 8 })],
    learningRate: 0.02,
    expected: () => perBlock(loraNames(['q', 'v'])),
  },
  {
    label: 'LoRA on every target with dropout',
    plugins: () => [
      lora({ rank: 2, alpha: 4, dropout: 0.1, targets: ['q', 'k', 'v', 'proj', 'fc1', 'fc2'] }),
    ],
    learningRate: 0.02,
    expected: () => perBlock(loraNames(ALL_TARGETS)),
  },
  {
    label: 'Houlsby adapter',
    plugins: () => [adapter({ kind: 'houlsby', bottleneck: 8 })],
    learningRate: 0.02,
    expected: () => perBlock((i) => [...adapterNames('attn')(i), ...adapterNames('mlp')(i)]),
  },
  {
    label: 'AdaptFormer',
    plugins: () => [adapter({ kind: 'adaptformer', bottleneck: 8, dropout: 0.1 })],
    learningRate: 0.02,
    expected: () => perBlock(adapterNames('mlp')),
  },
  {
    label: 'SSF',
    plugins: () => [ssf()],
    learningRate: 0.02,
    expected: () => [
      'ssf.patch_embed.scale',
      'ssf.patch_embed.shift',
      ...perBlock((i) =>
        ['norm1', 'qkv', 'proj', 'norm2', 'fc1', 'fc2'].flatMap((s) => [
          `ssf.blocks.${i}.${s}.scale`,
          `ssf.blocks.${i}.${s}.shift`,
        ]),
      ),
      'ssf.norm.scale',
      'ssf.norm.shift',
    ],
  },
  {
    label: 'LoRA + BitFit together',
    plugins: () => [lora({ rank: 4, alpha: 8 }), bitfit()],
    learningRate: 0.02,
    expected: (names) => [...perBlock(loraNames(['q', 'v'])), ...names.filter((n) => n.endsWith('.bias'))],
  },
]);
