import { PeftError, type VitConfig } from '@peftjs/core';
import type { PretrainedConfig } from '@peftjs/hub';
import { VIT_SIZES, type VitSize } from './presets.js';

/** What a Hub repository's config adds to shape inference: heads (shapes cannot tell) and LayerNorm eps. */
export interface PretrainedHints {
  /** Attention heads: stated by the config, else from a timm architecture name (`vit_base_…` → 12). */
  readonly heads?: number;
  /** LayerNorm epsilon, when the config states it (transformers). */
  readonly layerNormEps?: number;
}

const TIMM_VIT = /^vit_(tiny|small|base|large)_patch\d+/;

/** Hints for `loadVit` from a repository's `config.json` (none when there is no config). */
export function pretrainedHints(pretrained: PretrainedConfig | undefined): PretrainedHints {
  if (!pretrained) return {};
  const size = TIMM_VIT.exec(pretrained.architecture ?? '')?.[1] as VitSize | undefined;
  const heads = pretrained.heads ?? (size ? VIT_SIZES[size].heads : undefined);
  return {
    ...(heads !== undefined ? { heads } : {}),
    ...(pretrained.layerNormEps !== undefined ? { layerNormEps: pretrained.layerNormEps } : {}),
  };
}

/**
 * Checks the geometry read off the tensors against the config's input size and patch size; a disagreement is
 * one `WEIGHTS_MISMATCH` error naming the reference and both values.
 */
export function checkPretrainedGeometry(
  config: VitConfig,
  pretrained: PretrainedConfig | undefined,
  reference: string,
): void {
  if (!pretrained) return;
  const problems: string[] = [];
  if (pretrained.inputSize) {
    const [channels, height, width] = pretrained.inputSize;
    const [h, w] = config.imageSize;
    if (channels !== config.channels || height !== h || width !== w) {
      problems.push(
        `config.json input size [${channels}, ${height}, ${width}] but the weights hold [${config.channels}, ${h}, ${w}]`,
      );
    }
  }
  if (pretrained.patchSize !== undefined && pretrained.patchSize !== config.patchSize) {
    problems.push(`config.json patch size ${pretrained.patchSize} but the weights hold ${config.patchSize}`);
  }
  if (problems.length > 0) {
    throw new PeftError('WEIGHTS_MISMATCH', `${reference}: ${problems.join('; ')}`);
  }
}
