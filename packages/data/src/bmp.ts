import type { RawImage } from './raw-image.js';

/** The fields of a BMP header that decoding needs, validated against the file's length. */
interface BmpHeader {
  readonly view: DataView;
  readonly dataOffset: number;
  readonly headerSize: number;
  readonly width: number;
  /** Positive for bottom-up rows, negative for top-down. */
  readonly rawHeight: number;
  readonly height: number;
  readonly bpp: number;
  readonly stride: number;
}

/**
 * Reads and checks a BMP header (no pixel is touched, nothing is allocated): uncompressed 1/4/8/24/32-bit only,
 * and the pixel rows it declares must be in the file.
 */
export function readBmpHeader(bytes: Uint8Array): BmpHeader {
  if (bytes.length < 54) throw new Error(`BMP too short for its headers (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dataOffset = view.getUint32(10, true);
  const headerSize = view.getUint32(14, true);
  if (headerSize < 40)
    throw new Error(`unsupported BMP header (${headerSize} bytes; OS/2 bitmaps are not read)`);
  const width = view.getInt32(18, true);
  const rawHeight = view.getInt32(22, true);
  const bpp = view.getUint16(28, true);
  const compression = view.getUint32(30, true);
  if (compression !== 0) throw new Error(`unsupported BMP compression ${compression} (only uncompressed)`);
  if (![1, 4, 8, 24, 32].includes(bpp)) throw new Error(`unsupported BMP bit depth ${bpp}`);
  const height = Math.abs(rawHeight);
  if (width <= 0 || height === 0) throw new Error(`bad BMP size ${width}x${rawHeight}`);
  const stride = Math.ceil((bpp * width) / 32) * 4;
  if (dataOffset + stride * height > bytes.length) throw new Error('BMP pixel data is truncated');
  return { view, dataOffset, headerSize, width, rawHeight, height, bpp, stride };
}

/**
 * Minimal BMP decoder (sharp's libvips build has no BMP loader): uncompressed 1/4/8-bit palette and 24/32-bit
 * BGR(X), bottom-up or top-down. The fourth byte of 32-bit pixels is ignored, as PIL does for BI_RGB files.
 * Anything else throws (the caller names the file), and so does an image of more than `maxPixels` pixels, before
 * its output is allocated (a 1-bit BMP holds 24 output bits per file bit).
 */
export function decodeBmp(bytes: Uint8Array, maxPixels: number): RawImage {
  const { view, dataOffset, headerSize, width, rawHeight, height, bpp, stride } = readBmpHeader(bytes);
  if (width * height > maxPixels) {
    throw new Error(`BMP of ${width}×${height} pixels is over the limit of ${maxPixels} pixels`);
  }

  let palette: Uint8Array | null = null;
  if (bpp <= 8) {
    const colours = view.getUint32(46, true) || 1 << bpp;
    const at = 14 + headerSize;
    if (at + 4 * colours > dataOffset) throw new Error('BMP palette is truncated');
    palette = bytes.subarray(at, at + 4 * colours);
  }
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const row = dataOffset + stride * (rawHeight > 0 ? height - 1 - y : y);
    for (let x = 0; x < width; x++) {
      const o = 3 * (y * width + x);
      let b: number;
      let g: number;
      let r: number;
      if (palette) {
        const bit = x * bpp;
        const byte = bytes[row + (bit >> 3)] as number;
        const index = (byte >> (8 - bpp - (bit & 7))) & ((1 << bpp) - 1);
        if (4 * index + 2 >= palette.length) throw new Error(`BMP palette index ${index} out of range`);
        b = palette[4 * index] as number;
        g = palette[4 * index + 1] as number;
        r = palette[4 * index + 2] as number;
      } else {
        const p = row + x * (bpp >> 3);
        b = bytes[p] as number;
        g = bytes[p + 1] as number;
        r = bytes[p + 2] as number;
      }
      out[o] = r;
      out[o + 1] = g;
      out[o + 2] = b;
    }
  }
  return { data: out, width, height, channels: 3 };
}
