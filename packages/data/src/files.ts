import { constants, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { PeftError } from '@peftjs/core';
import { type InputLimits, grouped, howToRaise } from './limits.js';

/** What a path is, in words, for a file that is not a regular one. */
export function kindOf(info: Stats): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a FIFO (named pipe)';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Where `readRegularFile` found a problem: the reason (without the path) and whether the file was missing. */
export class FileRefused extends Error {
  constructor(
    message: string,
    readonly missing: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'FileRefused';
  }
}

/**
 * Reads a whole file, refusing anything but a regular file of at most `maxBytes` bytes. The file is opened
 * non-blocking and checked with `fstat` on the open handle, so a FIFO never blocks, a device (`/dev/zero`) is
 * never read, and a file swapped after a `stat` cannot slip through; at most the size seen then is read.
 * Throws `FileRefused` (the caller adds the file's role and path to the message).
 */
export async function readRegularFile(
  path: string,
  maxBytes: number,
  limit: keyof InputLimits,
): Promise<Buffer> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    // O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting forever.
    handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'not found' : (error as Error).message;
    throw new FileRefused(reason, code === 'ENOENT', { cause: error });
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) {
      throw new FileRefused(`${kindOf(info)}, not a regular file; only regular files are read`, false);
    }
    if (info.size > maxBytes) {
      throw new FileRefused(
        `${grouped(info.size)} bytes, over the limit of ${grouped(maxBytes)} bytes; ${howToRaise(limit)} if the file is genuine`,
        false,
      );
    }
    const bytes = Buffer.allocUnsafe(info.size);
    let filled = 0;
    while (filled < bytes.length) {
      const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, filled);
      if (bytesRead === 0) break; // the file shrank while being read: keep what is there
      filled += bytesRead;
    }
    return bytes.subarray(0, filled);
  } finally {
    await handle.close();
  }
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
