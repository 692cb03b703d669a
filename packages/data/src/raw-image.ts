/** 8-bit interleaved pixels. */
export interface RawImage {
  /** Pixels row by row, `channels` values each (`height · width · channels` bytes). */
  readonly data: Uint8Array;
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** Values per pixel: 1 (grey), 3 (RGB) or 4 (RGBA). */
  readonly channels: number;
}
