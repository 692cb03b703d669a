import { invalidOption } from '@peftjs/core';

/** Per-channel RGB statistics applied as `(x − mean[c]) / std[c]` to pixels in [0, 1]. */
export interface Normalization {
  /** Mean of the red, green and blue channels. */
  readonly mean: readonly [number, number, number];
  /** Standard deviation of the red, green and blue channels. */
  readonly std: readonly [number, number, number];
}

/**
 * `inception` maps [0, 1] to [−1, 1] (the ViT-B/16 in21k checkpoints and SHIP/NOAH's VTAB transform);
 * `imagenet` is torchvision's mean/std.
 */
export const NORMALIZATION_PRESETS = {
  /** `mean` 0.5 and `std` 0.5 on every channel: [0, 1] → [−1, 1]. */
  inception: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  /** torchvision's ImageNet statistics: `mean` [0.485, 0.456, 0.406], `std` [0.229, 0.224, 0.225]. */
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
} as const satisfies Record<string, Normalization>;

/** Name of a preset in `NORMALIZATION_PRESETS` (`inception` or `imagenet`). */
export type NormalizationName = keyof typeof NORMALIZATION_PRESETS;

/** Whether `name` is the name of a preset in `NORMALIZATION_PRESETS`. */
export function isNormalizationName(name: unknown): name is NormalizationName {
  return typeof name === 'string' && Object.hasOwn(NORMALIZATION_PRESETS, name);
}

/** Per-channel mean and std for `channels`; one channel uses the average of the three (0.449/0.226 for imagenet). */
export function channelStats(
  preset: NormalizationName | Normalization,
  channels: 1 | 3,
): {
  /** Per-channel means (`channels` values). */
  mean: number[];
  /** Per-channel standard deviations (`channels` values). */
  std: number[];
} {
  const stats = typeof preset === 'string' ? NORMALIZATION_PRESETS[preset] : preset;
  if (!stats)
    invalidOption('normalization', preset, `one of ${Object.keys(NORMALIZATION_PRESETS).join(', ')}`);
  if (channels === 3) return { mean: [...stats.mean], std: [...stats.std] };
  const avg = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  return { mean: [avg(stats.mean)], std: [avg(stats.std)] };
}

/**
 * `(x − mean[c]) / std[c]` over interleaved (HWC/NHWC) pixels in [0, 1]. Writes into `out` (which may be
 * `pixels` itself) or a new array.
 */
export function normalize(
  pixels: Float32Array,
  preset: NormalizationName | Normalization,
  channels: 1 | 3,
  out: Float32Array = new Float32Array(pixels.length),
): Float32Array {
  if (channels !== 1 && channels !== 3) invalidOption('channels', channels, '1 or 3');
  if (pixels.length % channels !== 0 || out.length < pixels.length) {
    invalidOption('pixels', pixels, `a multiple of ${channels} values, with room in out`);
  }
  const { mean, std } = channelStats(preset, channels);
  for (let c = 0; c < channels; c++) {
    const m = mean[c] as number;
    const s = std[c] as number;
    for (let i = c; i < pixels.length; i += channels) out[i] = ((pixels[i] as number) - m) / s;
  }
  return out;
}
