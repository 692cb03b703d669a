/**
 * `@peftjs/core/safetensors`: reading and writing the safetensors format (bounded, validated parsing; F32, F16,
 * BF16, I32 and U8 writing) and the half-precision conversions it uses.
 */
export {
  DEFAULT_MAX_HEADER_BYTES,
  type HostTensor,
  type ParseSafetensorsOptions,
  type SafetensorsDtype,
  type SafetensorsEntry,
  type SafetensorsFile,
  type TensorToWrite,
  type WritableDtype,
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
} from '../safetensors.js';
