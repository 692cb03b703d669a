import { PeftError, type VitConfig } from '@peftjs/core';
import { validateVitConfig } from '@peftjs/core/backbone';

/** Width / depth / heads of timm's named ViT sizes. */
export const VIT_SIZES = {
  /** ViT-Ti: 192 wide, 12 blocks, 3 heads. */
  tiny: { dim: 192, depth: 12, heads: 3 },
  /** ViT-S: 384 wide, 12 blocks, 6 heads. */
  small: { dim: 384, depth: 12, heads: 6 },
  /** ViT-B: 768 wide, 12 blocks, 12 heads. */
  base: { dim: 768, depth: 12, heads: 12 },
  /** ViT-L: 1024 wide, 24 blocks, 16 heads. */
  large: { dim: 1024, depth: 24, heads: 16 },
} as const;

/** A timm ViT size name: `tiny`, `small`, `base` or `large`. */
export type VitSize = keyof typeof VIT_SIZES;

/** `vit_{tiny|small|base|large}_patch{16|32}_{imageSize}`, the timm model names. */
export type VitPresetName = `vit_${VitSize}_patch${16 | 32}_${number}`;

const PRESET_PATTERN = /^vit_(tiny|small|base|large)_patch(16|32)_(\d+)$/;

/** Defaults shared by every preset: timm's LayerNorm eps, qkv bias, MLP ratio 4, no stochastic depth. */
export const TIMM_DEFAULTS = {
  /** LayerNorm epsilon of timm's ViTs. */
  layerNormEps: 1e-6,
  /** The fused qkv projection has a bias. */
  qkvBias: true,
  /** No stochastic depth. */
  dropPathRate: 0,
  /** RGB input. */
  channels: 3,
} as const;

/**
 * The config of a timm preset (e.g. `vit_base_patch16_224`), with optional overrides such as the number of
 * classes or a stochastic-depth rate.
 */
export function vitPreset(name: VitPresetName | string, overrides: Partial<VitConfig> = {}): VitConfig {
  const match = PRESET_PATTERN.exec(name);
  if (!match) {
    throw new PeftError(
      'INVALID_CONFIG',
      `unknown ViT preset "${name}"; expected vit_{tiny|small|base|large}_patch{16|32}_{imageSize}, ` +
        'e.g. vit_base_patch16_224',
    );
  }
  const size = VIT_SIZES[match[1] as VitSize];
  const image = Number(match[3]);
  return customVit({
    ...TIMM_DEFAULTS,
    ...size,
    patchSize: Number(match[2]),
    imageSize: [image, image],
    mlpHidden: size.dim * 4,
    numClasses: 1000,
    ...overrides,
  });
}

/** A custom geometry; unspecified fields take timm defaults (MLP hidden = 4·dim, 3 channels, eps 1e-6). */
export function customVit(
  config: Omit<Partial<VitConfig>, 'imageSize'> &
    Pick<VitConfig, 'dim' | 'depth' | 'heads' | 'patchSize'> & {
      imageSize: number | readonly [number, number];
    },
): VitConfig {
  const imageSize: [number, number] =
    typeof config.imageSize === 'number' ? [config.imageSize, config.imageSize] : [...config.imageSize];
  return validateVitConfig({
    channels: config.channels ?? TIMM_DEFAULTS.channels,
    layerNormEps: config.layerNormEps ?? TIMM_DEFAULTS.layerNormEps,
    qkvBias: config.qkvBias ?? TIMM_DEFAULTS.qkvBias,
    dropPathRate: config.dropPathRate ?? TIMM_DEFAULTS.dropPathRate,
    mlpHidden: config.mlpHidden ?? config.dim * 4,
    numClasses: config.numClasses ?? 1000,
    dim: config.dim,
    depth: config.depth,
    heads: config.heads,
    patchSize: config.patchSize,
    imageSize,
  });
}
