/**
 * `@peftjs/core/ops`: tensor helpers for writing hooks — the numerics the ViT itself uses (PyTorch-exact GELU and
 * LayerNorm, `linear`, softmax and the two-segment softmax, head merging, fast transposed matmuls) and the saliency helpers SHIP's prompts and loss
 * build on.
 */
export {
  gelu,
  layerNorm,
  linear,
  matMulT,
  mergeHeads,
  repeatBatch,
  segmentSoftmax,
  softmax,
  softmaxCrossEntropy,
  transposeLast2,
  transposedMatMulIsFast,
} from '../ops.js';
export { clsSaliency, detach, l2Normalize, selectTokens, topKSelection } from '../saliency.js';
