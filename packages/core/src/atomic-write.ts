import { PeftError } from './errors.js';

/**
 * Writes a file so that readers only ever see the old content or the complete new content: the bytes go to a
 * temporary file in the same directory (same filesystem, so `rename` is atomic), which then replaces the target.
 * On failure the temporary file is removed and the target is untouched.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  // Node-only modules are imported on use, so this package stays importable in browsers.
  const { mkdir, rename, rm, writeFile } = await import('node:fs/promises');
  const { basename, dirname, join } = await import('node:path');
  const { randomBytes } = await import('node:crypto');
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
