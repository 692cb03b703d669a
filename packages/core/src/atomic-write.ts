import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { PeftError } from './errors.js';

/**
 * Writes a file so that readers only ever see the old content or the complete new content: the bytes go to a
 * temporary file in the same directory (same filesystem, so `rename` is atomic), which then replaces the target.
 * On failure the temporary file is removed and the target is untouched.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `.peftjs-tmp-${basename(path)}-${randomBytes(6).toString('hex')}`);
  try {
    await writeFile(temp, data, { flag: 'wx' });
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw new PeftError('IO_FAILED', `could not write ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
