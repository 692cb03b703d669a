import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { getRepoFolderName } from '@huggingface/hub';
import { writeFileAtomic } from '@peftjs/core/internal';
import { isCommitHash } from './reference.js';

/**
 * One repository's folder in the Hugging Face cache, laid out exactly as Python's `huggingface_hub` writes it:
 * `models--org--name/{blobs/<etag>, snapshots/<commit>/<file> → ../../blobs/<etag>, refs/<revision>,
 * .no_exist/<commit>/<file>}`; locks of this package live in `<cache>/.locks/models--org--name/`.
 */
export class RepoCache {
  /** `<cache>/models--org--name`. */
  readonly folder: string;
  private readonly lockFolder: string;

  constructor(
    /** The cache root. */
    readonly cacheDir: string,
    /** Repository id. */
    readonly repo: string,
  ) {
    const name = getRepoFolderName({ type: 'model', name: repo });
    this.folder = join(cacheDir, name);
    this.lockFolder = join(cacheDir, '.locks', name);
  }

  /** `refs/<revision>`: holds the commit the revision pointed at when last resolved. */
  refPath(revision: string): string {
    return join(this.folder, 'refs', revision);
  }

  /** `snapshots/<commit>/<file>`. */
  snapshotPath(commit: string, file: string): string {
    return join(this.folder, 'snapshots', commit, file);
  }

  /** `blobs/<etag>`: the LFS sha256 for large files, the git blob id for small ones. */
  blobPath(etag: string): string {
    return join(this.folder, 'blobs', etag);
  }

  /** `.no_exist/<commit>/<file>`: an empty marker saying the file is not in the repository at that commit. */
  noExistPath(commit: string, file: string): string {
    return join(this.folder, '.no_exist', commit, file);
  }

  /** The resource `proper-lockfile` locks for one blob (its lock is this path + `.lock`). */
  lockResource(etag: string): string {
    return join(this.lockFolder, `${etag}.peftjs`);
  }

  /** The commit a revision resolves to from the cache alone: a commit hash itself, else `refs/<revision>`. */
  async cachedCommit(revision: string): Promise<string | undefined> {
    if (isCommitHash(revision)) return revision;
    try {
      const text = (await readFile(this.refPath(revision), 'utf8')).trim();
      return isCommitHash(text) ? text : undefined;
    } catch {
      // No ref file: this revision was never resolved into this cache.
      return undefined;
    }
  }

  /** What the cache knows of `file` at `commit`: its path, that it does not exist, or nothing. */
  async cachedFile(
    commit: string,
    file: string,
  ): Promise<{ state: 'present'; path: string } | { state: 'absent' | 'unknown' }> {
    const path = this.snapshotPath(commit, file);
    if (await isFile(path)) return { state: 'present', path };
    return (await isFile(this.noExistPath(commit, file))) ? { state: 'absent' } : { state: 'unknown' };
  }

  /** Records the commit a branch or tag resolved to (nothing for a commit hash, as Python does). */
  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit) return;
    await writeFileAtomic(this.refPath(revision), commit);
  }

  /** Records that `file` does not exist at `commit`. */
  async markAbsent(commit: string, file: string): Promise<void> {
    const path = this.noExistPath(commit, file);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, '');
  }

  /**
   * Points `snapshots/<commit>/<file>` at the blob with a relative symlink, replacing any previous entry
   * atomically (made under a temporary name, then renamed). Where symlinks are not allowed (Windows without
   * developer mode) the blob is copied, as Python does.
   */
  async linkSnapshot(commit: string, file: string, etag: string): Promise<string> {
    const path = this.snapshotPath(commit, file);
    const blob = this.blobPath(etag);
    await mkdir(dirname(path), { recursive: true });
    const temp = `${path}.peftjs-tmp-${randomBytes(6).toString('hex')}`;
    try {
      try {
        await symlink(relative(dirname(path), blob), temp);
      } catch {
        await copyFile(blob, temp);
      }
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    return path;
  }
}

/** Whether `path` is a regular file, following symlinks (a dangling snapshot link counts as missing). */
export async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Size of a file, 0 when it does not exist. */
export async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}
