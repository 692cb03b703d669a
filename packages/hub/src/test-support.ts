/** Fixtures of this package's tests (not published): repositories for the mock hub and an isolated environment. */
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '@peftjs/core';
import { serializeSafetensors } from '@peftjs/core/safetensors';
import type { MockRepo } from './testing/mock-hub.js';

/** A timm-style repository id served by the mock. */
export const TIMM_REPO = 'timm/vit_mock_patch8_32.tiny_in1k';
/** The reference users would type for it. */
export const TIMM_REF = 'timm:vit_mock_patch8_32.tiny_in1k';
/** A gated repository. */
export const GATED_REPO = 'acme/gated-vit';
/** The token with access to the gated repository; it must never appear in any output. */
export const SECRET_TOKEN = 'hf_SeCrEt0123456789abcdefTOKEN';

/** A safetensors file of `count` seeded floats (1.2 MB by default: above the progress bar's threshold). */
export function weightsBytes(count = 300_000, seed = 'hub-test'): Uint8Array {
  const data = new Rng(seed).fillUniform(new Float32Array(count), -1, 1);
  return serializeSafetensors([{ name: 'weights', shape: [count], data }], { format: 'pt' });
}

/** timm's `config.json` for the mock model: what `pretrained_cfg` looks like on the Hub. */
export const TIMM_CONFIG = {
  architecture: 'vit_mock_patch8_32',
  num_classes: 10,
  num_features: 128,
  global_pool: 'token',
  model_args: { num_heads: 2 },
  pretrained_cfg: {
    tag: 'tiny_in1k',
    custom_load: false,
    input_size: [3, 32, 32],
    fixed_input_size: true,
    interpolation: 'bicubic',
    crop_pct: 0.9,
    crop_mode: 'center',
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    num_classes: 10,
    pool_size: null,
    first_conv: 'patch_embed.proj',
    classifier: 'head',
  },
};

/** The repositories every test file serves. */
export function mockRepos(weights: Uint8Array): Record<string, MockRepo> {
  const config = new TextEncoder().encode(JSON.stringify(TIMM_CONFIG, null, 2));
  return {
    [TIMM_REPO]: { files: { 'model.safetensors': weights, 'config.json': config } },
    [GATED_REPO]: { gated: true, files: { 'model.safetensors': weights } },
  };
}

/** Clears every variable the resolver reads and points HF_HOME at an empty folder (no token file). */
export async function isolateEnvironment(): Promise<void> {
  for (const name of [
    'HF_TOKEN',
    'HUGGING_FACE_HUB_TOKEN',
    'HF_TOKEN_PATH',
    'HF_ENDPOINT',
    'HF_HUB_OFFLINE',
    'HF_HUB_CACHE',
    'HUGGINGFACE_HUB_CACHE',
  ]) {
    delete process.env[name];
  }
  process.env.HF_HOME = await mkdtemp(join(tmpdir(), 'peftjs-hf-home-'));
}

/** A fresh empty cache folder. */
export function freshCache(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'peftjs-hub-cache-'));
}

/** Every file under `dir`, relative, sorted (empty when `dir` does not exist). */
export async function listTree(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries
      .filter((entry) => !entry.isDirectory())
      .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
      .sort();
  } catch {
    return [];
  }
}
