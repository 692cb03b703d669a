/**
 * `@peftjs/core/safetensors`: reading and writing the safetensors format (bounded, validated parsing; F32, F16,
 * BF16, I32 and U8 writing) and the half-precision conversions it uses.
 */
export * from '../safetensors.js';
