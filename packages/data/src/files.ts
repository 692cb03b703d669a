import { PeftError } from '@peftjs/core';
import { FileRefused, kindOf, readRegularFile as readAnyRegularFile } from '@peftjs/core/internal';
import { type InputLimits, grouped, howToRaise } from './limits.js';

export { FileRefused, kindOf };

/**
 * Reads a whole file, refusing anything but a regular file of at most `maxBytes` bytes (see core's
 * `readRegularFile`); a file over the limit is refused naming the option `limit` that raises it.
 */
export async function readRegularFile(
  path: string,
  maxBytes: number,
  limit: keyof InputLimits,
): Promise<Buffer> {
  const bytes = await readAnyRegularFile(
    path,
    maxBytes,
    (size) =>
      `${grouped(size)} bytes, over the limit of ${grouped(maxBytes)} bytes; ${howToRaise(limit)} if the file is genuine`,
  );
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** `readRegularFile` with `FileRefused` turned into an `IO_FAILED` `PeftError`: `cannot read <what> <path>: …`. */
export async function readInputFile(
  path: string,
  what: string,
  maxBytes: number,
  limit: keyof InputLimits,
  suffix = '',
): Promise<Buffer> {
  try {
    return await readRegularFile(path, maxBytes, limit);
  } catch (error) {
    if (!(error instanceof FileRefused)) throw error;
    throw new PeftError('IO_FAILED', `cannot read ${what} ${path}${suffix}: ${error.message}`, {
      cause: error.cause ?? error,
    });
  }
}
