/** The raster formats PEFT.js decodes, recognised by their first bytes (never by the file name). */
export type RasterFormat = 'png' | 'jpeg' | 'gif' | 'webp' | 'tiff' | 'bmp';

const ascii = (bytes: Uint8Array, at: number, text: string): boolean =>
  [...text].every((c, i) => bytes[at + i] === c.charCodeAt(0));

/**
 * The raster format of a file from its magic bytes, or `null`. Only these formats are ever handed to a decoder:
 * sharp would also render SVG, whose size is whatever the text says, so a 100-byte `.png` could ask for gigabytes.
 */
export function sniffRasterFormat(bytes: Uint8Array): RasterFormat | null {
  if (bytes.length >= 8 && [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((b, i) => bytes[i] === b)) {
    return 'png';
  }
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (ascii(bytes, 0, 'GIF87a') || ascii(bytes, 0, 'GIF89a')) return 'gif';
  if (ascii(bytes, 0, 'RIFF') && ascii(bytes, 8, 'WEBP')) return 'webp';
  // Classic TIFF (42) and BigTIFF (43), little- or big-endian.
  if (ascii(bytes, 0, 'II') && (bytes[2] === 0x2a || bytes[2] === 0x2b) && bytes[3] === 0) return 'tiff';
  if (ascii(bytes, 0, 'MM') && bytes[2] === 0 && (bytes[3] === 0x2a || bytes[3] === 0x2b)) return 'tiff';
  if (ascii(bytes, 0, 'BM')) return 'bmp';
  return null;
}

/** A short description of what a refused file looks like, for the error message. */
export function describeUnknownFormat(bytes: Uint8Array): string {
  const head = Buffer.from(bytes.subarray(0, 256)).toString('latin1').trimStart().toLowerCase();
  const hex = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  const looks =
    head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))
      ? ' (it looks like SVG, which is not decoded)'
      : head.startsWith('<')
        ? ' (it looks like XML or HTML)'
        : '';
  return `not a PNG, JPEG, GIF, WebP, TIFF or BMP file: it starts with ${hex || 'nothing (empty file)'}${looks}`;
}
