/**
 * The single TensorFlow.js instance every PEFT.js package uses. Importing the union package (not only
 * tfjs-core) matters: it registers the gradient functions that training needs.
 */
import * as tf from '@tensorflow/tfjs';

export { tf };
/** Any tfjs tensor (`tf.Tensor`). */
export type Tensor = tf.Tensor;
/** A rank-0 tfjs tensor (`tf.Scalar`). */
export type Scalar = tf.Scalar;
/** A rank-1 tfjs tensor (`tf.Tensor1D`). */
export type Tensor1D = tf.Tensor1D;
/** A rank-2 tfjs tensor (`tf.Tensor2D`). */
export type Tensor2D = tf.Tensor2D;
/** A rank-3 tfjs tensor (`tf.Tensor3D`), e.g. a token sequence `[B, N, D]`. */
export type Tensor3D = tf.Tensor3D;
/** A rank-4 tfjs tensor (`tf.Tensor4D`), e.g. images `[B, H, W, C]` or attention `[B, H, N, dh]`. */
export type Tensor4D = tf.Tensor4D;
/** A mutable tfjs variable (`tf.Variable`): the storage of every registered parameter and buffer. */
export type Variable = tf.Variable;
