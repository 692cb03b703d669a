/**
 * Pixels → model input, exactly as @peftjs/data computes it (x / 255 in float32, then inception normalisation
 * (x − 0.5) / 0.5), so the page and `peft eval` feed the model identical numbers for identical pixels.
 */

/** Interleaved RGBA (canvas `ImageData`) or RGB bytes → normalised RGB float32, HWC. */
export function toModelInput(bytes: ArrayLike<number>, channelsIn: 3 | 4, out?: Float32Array): Float32Array {
  const count = bytes.length / channelsIn;
  const result = out ?? new Float32Array(count * 3);
  for (let p = 0; p < count; p++) {
    for (let c = 0; c < 3; c++) {
      const unit = Math.fround((bytes[p * channelsIn + c] as number) / 255);
      result[p * 3 + c] = (unit - 0.5) / 0.5;
    }
  }
  return result;
}

/** Decodes an image (PNG, JPEG, …) to RGBA at its own size, with no colour management or premultiplication. */
export async function decodeRgba(blob: Blob): Promise<ImageData> {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  try {
    return drawRgba(bitmap, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

/** Draws `image` scaled to `width` × `height` on an offscreen canvas and reads the RGBA pixels back. */
export function drawRgba(image: CanvasImageSource, width: number, height: number): ImageData {
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  if (!context) throw new Error('no 2d canvas context');
  context.drawImage(image, 0, 0, width, height);
  return context.getImageData(0, 0, width, height);
}

/** Cuts tile `index` (row by row, `columns` a row) of side `size` out of a sprite sheet, as RGBA. */
export function tileRgba(sheet: ImageData, index: number, size: number, columns: number): Uint8ClampedArray {
  const out = new Uint8ClampedArray(size * size * 4);
  const x0 = (index % columns) * size;
  const y0 = Math.floor(index / columns) * size;
  for (let y = 0; y < size; y++) {
    const start = ((y0 + y) * sheet.width + x0) * 4;
    out.set(sheet.data.subarray(start, start + size * 4), y * size * 4);
  }
  return out;
}
