import { type Rng, type Tensor, type VitConfig, tf, vitGeometry } from '@peftjs/core';

/**
 * The timm parameter table of a ViT, and how each tensor is stored inside PEFT.js.
 *
 * Names are timm's. Layouts differ where the wasm backend needs it: linear weights are kept `[in, out]` (timm:
 * `[out, in]`) so that every forward matmul runs untransposed, and the patch-embedding kernel is kept as a
 * `[p·p·C, D]` matrix (timm: OIHW `[D, C, p, p]`) so the patch embedding is a single GEMM. Conversion happens once,
 * at load and save.
 */
export type StorageLayout = 'same' | 'linear' | 'patch';

/** One tensor of the ViT parameter table. */
export interface ParameterSpec {
  /** timm name, e.g. `blocks.0.attn.qkv.weight`; also the registry name. */
  readonly name: string;
  /** Shape in timm / PyTorch layout (what checkpoints contain). */
  readonly torchShape: readonly number[];
  /** How the stored tensor differs from `torchShape` (see `StorageLayout`). */
  readonly layout: StorageLayout;
  /**
   * Part of the network: patch/position embedding and CLS token, a transformer block, the final norm, or the
   * classifier (registered under owner `'head'`, the rest under `'backbone'`).
   */
  readonly group: 'embedding' | 'block' | 'norm' | 'head';
}

/**
 * Every tensor of a ViT with `config`, in timm order: embeddings, each block (qkv bias only with `qkvBias`),
 * final norm, then the head unless `options.head` is false.
 */
export function vitParameterSpecs(config: VitConfig, options: { head?: boolean } = {}): ParameterSpec[] {
  const { dim, depth, mlpHidden, channels, patchSize: p, numClasses } = config;
  const { numImageTokens } = vitGeometry(config);
  const specs: ParameterSpec[] = [
    { name: 'cls_token', torchShape: [1, 1, dim], layout: 'same', group: 'embedding' },
    { name: 'pos_embed', torchShape: [1, numImageTokens, dim], layout: 'same', group: 'embedding' },
    {
      name: 'patch_embed.proj.weight',
      torchShape: [dim, channels, p, p],
      layout: 'patch',
      group: 'embedding',
    },
    { name: 'patch_embed.proj.bias', torchShape: [dim], layout: 'same', group: 'embedding' },
  ];
  for (let i = 0; i < depth; i++) {
    const b = `blocks.${i}`;
    specs.push(
      { name: `${b}.norm1.weight`, torchShape: [dim], layout: 'same', group: 'block' },
      { name: `${b}.norm1.bias`, torchShape: [dim], layout: 'same', group: 'block' },
      { name: `${b}.attn.qkv.weight`, torchShape: [3 * dim, dim], layout: 'linear', group: 'block' },
    );
    if (config.qkvBias)
      specs.push({ name: `${b}.attn.qkv.bias`, torchShape: [3 * dim], layout: 'same', group: 'block' });
    specs.push(
      { name: `${b}.attn.proj.weight`, torchShape: [dim, dim], layout: 'linear', group: 'block' },
      { name: `${b}.attn.proj.bias`, torchShape: [dim], layout: 'same', group: 'block' },
      { name: `${b}.norm2.weight`, torchShape: [dim], layout: 'same', group: 'block' },
      { name: `${b}.norm2.bias`, torchShape: [dim], layout: 'same', group: 'block' },
      { name: `${b}.mlp.fc1.weight`, torchShape: [mlpHidden, dim], layout: 'linear', group: 'block' },
      { name: `${b}.mlp.fc1.bias`, torchShape: [mlpHidden], layout: 'same', group: 'block' },
      { name: `${b}.mlp.fc2.weight`, torchShape: [dim, mlpHidden], layout: 'linear', group: 'block' },
      { name: `${b}.mlp.fc2.bias`, torchShape: [dim], layout: 'same', group: 'block' },
    );
  }
  specs.push(
    { name: 'norm.weight', torchShape: [dim], layout: 'same', group: 'norm' },
    { name: 'norm.bias', torchShape: [dim], layout: 'same', group: 'norm' },
  );
  if (options.head ?? true) {
    specs.push(
      { name: 'head.weight', torchShape: [numClasses, dim], layout: 'linear', group: 'head' },
      { name: 'head.bias', torchShape: [numClasses], layout: 'same', group: 'head' },
    );
  }
  return specs;
}

/**
 * timm's random initialisation of one ViT tensor, in timm / PyTorch layout (`spec.torchShape`): trunc-normal(0.02)
 * linear weights and position embedding, N(0, 1e-6) class token, PyTorch's Conv2d default U(±1/√fan_in) for the patch
 * projection, unit LayerNorm weights, zero biases. `VisionTransformer.create` draws every tensor with it, in
 * `vitParameterSpecs` order from one stream; `toStorageLayout` turns the values into the stored tensor.
 */
export function timmInitialValues(spec: ParameterSpec, config: VitConfig, rng: Rng): Float32Array {
  const data = new Float32Array(spec.torchShape.reduce((a, b) => a * b, 1));
  const last = spec.name.split('.').pop();
  if (spec.name === 'cls_token') rng.fillNormal(data, 0, 1e-6);
  else if (spec.name === 'pos_embed') rng.fillTruncatedNormal(data, 0.02);
  else if (spec.name.startsWith('patch_embed.')) {
    const bound = 1 / Math.sqrt(config.channels * config.patchSize * config.patchSize);
    rng.fillUniform(data, -bound, bound);
  } else if (spec.name.includes('norm')) data.fill(last === 'weight' ? 1 : 0);
  else if (last === 'weight') rng.fillTruncatedNormal(data, 0.02);
  // Linear biases stay zero.
  return data;
}

/** Shape of a parameter as PEFT.js stores it. */
export function storageShape(spec: ParameterSpec): number[] {
  const s = spec.torchShape;
  switch (spec.layout) {
    case 'same':
      return [...s];
    case 'linear':
      return [s[1] as number, s[0] as number];
    case 'patch':
      return [(s[2] as number) * (s[3] as number) * (s[1] as number), s[0] as number];
  }
}

/** Converts a tensor from timm / PyTorch layout to PEFT.js storage layout. */
export function toStorageLayout(spec: ParameterSpec, torchTensor: Tensor): Tensor {
  return tf.tidy(() => {
    switch (spec.layout) {
      case 'same':
        return tf.reshape(torchTensor, storageShape(spec));
      case 'linear':
        return tf.transpose(torchTensor);
      case 'patch':
        // OIHW [D, C, p, p] → HWIO [p, p, C, D] → [p·p·C, D] (rows in (row, col, channel) order of a patch).
        return tf.reshape(tf.transpose(torchTensor, [2, 3, 1, 0]), storageShape(spec));
    }
  });
}

/** Inverse of `toStorageLayout`. */
export function toTorchLayout(spec: ParameterSpec, stored: Tensor): Tensor {
  return tf.tidy(() => {
    const s = spec.torchShape;
    switch (spec.layout) {
      case 'same':
        return tf.reshape(stored, [...s]);
      case 'linear':
        return tf.transpose(stored);
      case 'patch':
        return tf.transpose(
          tf.reshape(stored, [s[2] as number, s[3] as number, s[1] as number, s[0] as number]),
          [3, 2, 0, 1],
        );
    }
  });
}
