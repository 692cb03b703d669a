import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PeftError } from '@peftjs/core';
import lockfile from 'proper-lockfile';

/** How often a waiting process tries the lock again, in ms. */
const POLL_MS = 150;

/** Options of `withLock`. */
export interface LockOptions {
  /** A lock not refreshed for this long is taken over (its holder died), in ms (≥ 2000). */
  readonly staleMs: number;
  /** Called once when the lock is held by another process and this one starts waiting. */
  readonly onWait?: () => void;
}

/**
 * Runs `task` holding a cross-process lock on `resource` (`proper-lockfile`: an atomic `mkdir` of
 * `<resource>.lock`, its mtime refreshed while held; a holder that died leaves a lock that turns stale and is
 * taken over). Waits as long as a live process holds it. `task` receives a check that throws when the lock was
 * lost meanwhile (e.g. the process stalled past the stale time and another took over).
 */
export async function withLock<T>(
  resource: string,
  options: LockOptions,
  task: (assertHeld: () => void) => Promise<T>,
): Promise<T> {
  await mkdir(dirname(resource), { recursive: true });
  let lost: Error | undefined;
  let release: (() => Promise<void>) | undefined;
  let waiting = false;
  const staleMs = Math.max(2000, options.staleMs);
  while (!release) {
    try {
      release = await lockfile.lock(resource, {
        realpath: false,
        stale: staleMs,
        update: Math.max(1000, Math.floor(staleMs / 3)),
        retries: 0,
        onCompromised: (error) => {
          lost = error;
        },
      });
    } catch (error) {
      if ((error as { code?: string }).code !== 'ELOCKED') {
        throw new PeftError('IO_FAILED', `cannot lock ${resource}: ${(error as Error).message}`, {
          cause: error,
        });
      }
      if (!waiting) options.onWait?.();
      waiting = true;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }
  const assertHeld = () => {
    if (lost) throw new PeftError('IO_FAILED', `lost the lock on ${resource}: ${lost.message}`);
  };
  try {
    return await task(assertHeld);
  } finally {
    // Releasing a lock that was taken over fails; the other holder owns it now.
    await release().catch(() => {});
  }
}
