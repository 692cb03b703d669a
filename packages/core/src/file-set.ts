import { PeftError } from './errors.js';

/**
 * Several files of one directory that only make sense together (an adapter's config and weights, a checkpoint's
 * JSON and tensors, a run's results and report), replaced as one generation:
 *
 * 1. every new file is written beside its old version as `<name>.peftjs-next` and flushed to disk;
 * 2. a small journal, `.peftjs-commit.json`, listing those files is written atomically — the commit point;
 * 3. each `<name>.peftjs-next` is renamed over `<name>`, then the journal is removed.
 *
 * A reader that finds no journal reads the files in place: the old generation, whatever happened to the pending
 * files (a crash before the commit point leaves them as garbage). A reader that finds the journal reads, for each
 * listed file, the pending version where it is still there and the renamed one otherwise: the new generation. So a
 * crash at any step leaves exactly one complete generation — never neither, never a mix. The next writer finishes
 * an interrupted switch (or discards garbage) before it starts, and removes stale temporary files.
 */
export interface FileSetFs {
  /** Creates or truncates `path`, writes `data` and flushes it to disk before resolving. */
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  /** Atomically renames `from` to `to`, replacing `to`. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; no error when it does not exist. */
  remove(path: string): Promise<void>;
  /** File names in `dir` (empty when it does not exist). */
  list(dir: string): Promise<string[]>;
  /** The bytes of `path`, or null when it does not exist. */
  read(path: string): Promise<Uint8Array | null>;
  /** Creates `dir` and its parents. */
  makeDir(dir: string): Promise<void>;
  /** Flushes the directory entry of `dir` (renames and removals) to disk. */
  syncDir(dir: string): Promise<void>;
}

/** One file of a set. */
export interface SetFile {
  /** File name inside the directory (no separators). */
  readonly name: string;
  /** Contents. */
  readonly data: Uint8Array | string;
}

/** Options of `writeFileSet`, `readFileSet` and `recoverFileSet`. */
export interface FileSetOptions {
  /** Filesystem calls to use (default: Node's `fs`); tests inject faults through it. */
  readonly fs?: FileSetFs;
}

const PENDING = '.peftjs-next';
const JOURNAL = '.peftjs-commit.json';
const JOURNAL_TEMP = `${JOURNAL}.peftjs-tmp`;
/** Prefix of `writeFileAtomic`'s temporary files; stale ones are removed with the rest. */
const ATOMIC_TEMP_PREFIX = '.peftjs-tmp-';

interface Journal {
  readonly format: 'peftjs-file-set';
  readonly files: readonly { readonly name: string; readonly size: number }[];
}

const join = (dir: string, name: string) => (dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`);

/** Node's filesystem as a `FileSetFs` (imported on use, so this module stays importable in browsers). */
export async function nodeFileSetFs(): Promise<FileSetFs> {
  const fs = await import('node:fs/promises');
  const syncPath = async (path: string, flags: string) => {
    const handle = await fs.open(path, flags);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  };
  return {
    async writeFile(path, data) {
      const handle = await fs.open(path, 'w');
      try {
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
    },
    rename: (from, to) => fs.rename(from, to),
    remove: (path) => fs.rm(path, { force: true }),
    list: async (dir) => {
      try {
        return await fs.readdir(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw error;
      }
    },
    read: async (path) => {
      try {
        return new Uint8Array(await fs.readFile(path));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }
    },
    makeDir: async (dir) => {
      await fs.mkdir(dir, { recursive: true });
    },
    syncDir: (dir) => syncPath(dir, 'r'),
  };
}

function checkNames(dir: string, files: readonly SetFile[]): void {
  const seen = new Set<string>();
  for (const { name } of files) {
    if (
      name === '' ||
      name.includes('/') ||
      name.includes('\\') ||
      name.startsWith('.peftjs-') ||
      seen.has(name)
    ) {
      throw new PeftError(
        'IO_FAILED',
        `${dir}: invalid or repeated file name ${JSON.stringify(name)} in a file set`,
      );
    }
    seen.add(name);
  }
}

async function readJournal(fs: FileSetFs, dir: string): Promise<Journal | null> {
  const bytes = await fs.read(join(dir, JOURNAL));
  if (bytes === null) return null;
  // The journal is renamed into place complete, so an unreadable one is damage, not an interrupted write.
  try {
    const journal = JSON.parse(new TextDecoder().decode(bytes)) as Journal;
    if (journal.format === 'peftjs-file-set' && Array.isArray(journal.files)) return journal;
  } catch {
    // reported below
  }
  throw new PeftError(
    'IO_FAILED',
    `${join(dir, JOURNAL)}: damaged file-set journal; remove it to keep the files in place`,
  );
}

/**
 * Finishes a switch a crash interrupted (renames the remaining pending files, removes the journal) or, without a
 * journal, removes pending files of a save that never committed; also removes stale temporary files of
 * `writeFileAtomic`. Run by `writeFileSet` before it writes; call it on start to tidy a folder.
 */
export async function recoverFileSet(dir: string, options: FileSetOptions = {}): Promise<void> {
  const fs = options.fs ?? (await nodeFileSetFs());
  const journal = await readJournal(fs, dir);
  const names = await fs.list(dir);
  if (journal) {
    for (const { name } of journal.files) {
      if (names.includes(`${name}${PENDING}`))
        await fs.rename(join(dir, `${name}${PENDING}`), join(dir, name));
    }
    await fs.syncDir(dir);
    await fs.remove(join(dir, JOURNAL));
  }
  for (const name of await fs.list(dir)) {
    if (name.endsWith(PENDING) || name === JOURNAL_TEMP || name.startsWith(ATOMIC_TEMP_PREFIX)) {
      await fs.remove(join(dir, name));
    }
  }
  await fs.syncDir(dir);
}

/**
 * Replaces `files` in `dir` as one generation (see `FileSetFs` for the protocol); other files of `dir` are left
 * alone. A failure before the commit point leaves the old generation in place and removes what was written; a
 * failure after it leaves the new generation readable (and finished by the next writer). Errors are `IO_FAILED`
 * naming the file.
 */
export async function writeFileSet(
  dir: string,
  files: readonly SetFile[],
  options: FileSetOptions = {},
): Promise<void> {
  checkNames(dir, files);
  const fs = options.fs ?? (await nodeFileSetFs());
  let current = dir;
  try {
    await fs.makeDir(dir);
    await recoverFileSet(dir, { fs });
    for (const { name, data } of files) {
      current = join(dir, `${name}${PENDING}`);
      await fs.writeFile(current, data);
    }
    await fs.syncDir(dir);
    const journal: Journal = {
      format: 'peftjs-file-set',
      files: files.map(({ name, data }) => ({
        name,
        size: typeof data === 'string' ? new TextEncoder().encode(data).length : data.length,
      })),
    };
    current = join(dir, JOURNAL);
    await fs.writeFile(join(dir, JOURNAL_TEMP), `${JSON.stringify(journal)}\n`);
    await fs.rename(join(dir, JOURNAL_TEMP), join(dir, JOURNAL));
    await fs.syncDir(dir);
  } catch (error) {
    // Not committed: the old generation stays; drop what this save wrote (best effort).
    for (const { name } of files) await fs.remove(join(dir, `${name}${PENDING}`)).catch(() => undefined);
    await fs.remove(join(dir, JOURNAL_TEMP)).catch(() => undefined);
    throw ioFailed(current, error);
  }
  try {
    await recoverFileSet(dir, { fs });
  } catch (error) {
    throw ioFailed(dir, error, ' (the new files are committed and will be finished by the next save)');
  }
}

function ioFailed(path: string, error: unknown, note = ''): PeftError {
  if (error instanceof PeftError) return error;
  return new PeftError('IO_FAILED', `could not write ${path}: ${(error as Error).message}${note}`, {
    cause: error,
  });
}

/**
 * Reads the current generation of `names` in `dir` without changing anything: the files in place, or, after a
 * switch a crash interrupted, the committed pending versions. A missing file is `null`.
 */
export async function readFileSet(
  dir: string,
  names: readonly string[],
  options: FileSetOptions = {},
): Promise<Map<string, Uint8Array | null>> {
  const fs = options.fs ?? (await nodeFileSetFs());
  const journal = await readJournal(fs, dir);
  const out = new Map<string, Uint8Array | null>();
  for (const name of names) {
    const listed = journal?.files.find((f) => f.name === name);
    const pending = listed ? await fs.read(join(dir, `${name}${PENDING}`)) : null;
    if (listed && pending !== null && pending.length !== listed.size) {
      throw new PeftError(
        'IO_FAILED',
        `${join(dir, `${name}${PENDING}`)} holds ${pending.length} bytes, the journal says ${listed.size}`,
      );
    }
    out.set(name, pending ?? (await fs.read(join(dir, name))));
  }
  return out;
}
