import { open, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PeftError } from '@peftjs/core';

/** Name of the lock file a command holds in its output folder (a run folder, a sweep folder). */
export const LOCK_FILE = '.peftjs-lock';

interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly command: string;
  readonly started: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(path: string): Promise<LockOwner | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockOwner;
  } catch {
    return null;
  }
}

/**
 * Takes `dir`'s lock for this process (creating `dir`), so that two commands never write one folder at once; the
 * lock file names the owner. A lock left by a process that died on this host is taken over; a live owner, or one
 * on another host (a shared folder), is refused with `FOLDER_LOCKED` naming its pid, host and command. Returns the
 * release function (also safe to call twice).
 */
export async function lockFolder(dir: string, command: string): Promise<() => Promise<void>> {
  const { mkdir } = await import('node:fs/promises');
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    throw new PeftError(
      'IO_FAILED',
      `cannot create folder ${JSON.stringify(dir)}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const path = join(dir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), command, started: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(`${JSON.stringify(me)}\n`);
      await handle.close();
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        const owner = await readOwner(path);
        if (owner?.pid === me.pid && owner.host === me.host) await rm(path, { force: true });
      };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') {
        throw new PeftError('IO_FAILED', `cannot write in ${dir}: ${(error as Error).message}`, {
          cause: error,
        });
      }
      const owner = await readOwner(path);
      const stale = owner !== null && owner.host === me.host && !alive(owner.pid);
      if (!stale || attempt > 0) {
        const who = owner
          ? `pid ${owner.pid} on ${owner.host} (${owner.command}, since ${owner.started})`
          : 'a process whose lock file cannot be read';
        throw new PeftError(
          'FOLDER_LOCKED',
          `${dir} is in use by ${who}; wait for it to finish or choose another folder (if that process is gone, ` +
            `remove ${path})`,
        );
      }
      await rm(path, { force: true });
    }
  }
  throw new PeftError('FOLDER_LOCKED', `${dir}: could not take its lock`);
}
