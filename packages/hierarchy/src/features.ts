import { PeftError, invalidOption, tf } from '@peftjs/core';
import type { Tensor2D, Tensor3D } from '@peftjs/core';

/** Every `HierarchyToken`: the values the `token` options accept. */
export const HIERARCHY_TOKENS = ['cls', 'mean-patch'] as const;

/** Which vector of a block's output represents an image: the CLS token (default) or the mean of patch tokens. */
export type HierarchyToken = (typeof HIERARCHY_TOKENS)[number];

export function requireToken(option: string, value: unknown): HierarchyToken {
  if (!HIERARCHY_TOKENS.includes(value as HierarchyToken)) {
    invalidOption(option, value, `one of ${HIERARCHY_TOKENS.map((t) => `"${t}"`).join(', ')}`);
  }
  return value as HierarchyToken;
}

/**
 * One `[B, D]` vector per image and layer from the per-block outputs `[B, N_img, D]` (token 0 = CLS). The caller
 * owns the returned tensors.
 */
export function layerFeatures(blockOutputs: readonly Tensor3D[], token: HierarchyToken = 'cls'): Tensor2D[] {
  requireToken('token', token);
  return tf.tidy(() =>
    blockOutputs.map((x, l) => {
      if (x.rank !== 3) {
        throw new PeftError('SHAPE_MISMATCH', `blockOutputs[${l}] must be [B, N, D]; got [${x.shape}]`);
      }
      const [batch, tokens, dim] = x.shape;
      if (token === 'cls')
        return tf.reshape(tf.slice(x, [0, 0, 0], [batch, 1, dim]), [batch, dim]) as Tensor2D;
      if (tokens < 2) {
        throw new PeftError(
          'SHAPE_MISMATCH',
          `blockOutputs[${l}] has no patch tokens (shape [${x.shape}]) for token "mean-patch"`,
        );
      }
      return tf.mean(tf.slice(x, [0, 1, 0], [batch, tokens - 1, dim]), 1) as Tensor2D;
    }),
  );
}
