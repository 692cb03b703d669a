/**
 * Reading a whole file safely: only a regular file, never more than a bound. Shared by every reader of user files
 * (images, lists, IDX, weights), so `/dev/zero`, a FIFO or a folder named like a data file is refused the same way.
 */

/** What a path is, in words, for a file that is not a regular one. */
export function kindOf(info: import('node:fs').Stats): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a FIFO (named pipe)';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Why `readRegularFile` refused a file: the reason (without the path) and whether the file was missing. */
export class FileRefused extends Error {
  constructor(
    message: string,
    /** True when the file does not exist (as opposed to being refused). */
    readonly missing: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'FileRefused';
  }
}

/**
 * Reads a whole file, refusing anything but a regular file of at most `maxBytes` bytes (`tooLarge` words the
 * refusal). The file is opened non-blocking and checked with `fstat` on the open handle, so a FIFO never blocks, a
 * device (`/dev/zero`) is never read, and a file swapped after a `stat` cannot slip through; at most the size seen
 * then is read. Throws `FileRefused` (the caller adds the file's role and path).
 */
export async function readRegularFile(
  path: string,
  maxBytes: number,
  tooLarge: (size: number) => string,
): Promise<Uint8Array> {
  const { constants } = await import('node:fs');
  const { open } = await import('node:fs/promises');
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
    if (info.size > maxBytes) throw new FileRefused(tooLarge(info.size), false);
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
