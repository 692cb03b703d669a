import type { FileSetFs } from '../file-set.js';

/** Thrown by the injected filesystem where a real process would have died or the disk was full. */
export class InjectedFault extends Error {}

/**
 * Node's filesystem with a fault at call number `at`: `kill` makes that call and every later one fail (a process
 * that died: a file being written is left half-written, nothing after it runs); `fail` makes only that call fail
 * with ENOSPC (the writer's clean-up still runs).
 */
export function faultyFs(
  real: FileSetFs,
  at: number,
  mode: 'kill' | 'fail',
): FileSetFs & {
  /** Filesystem calls made so far (the faulty one included). */
  calls: number;
} {
  let calls = 0;
  let dead = false;
  const gate = async <T>(op: () => Promise<T>, partial?: () => Promise<void>): Promise<T> => {
    if (dead) throw new InjectedFault('process is dead');
    if (calls++ === at) {
      if (mode === 'kill') dead = true;
      if (partial) await partial();
      throw new InjectedFault(mode === 'kill' ? 'killed' : 'ENOSPC: no space left on device');
    }
    return op();
  };
  const fs: FileSetFs & { calls: number } = {
    get calls() {
      return calls;
    },
    writeFile: (path, data) =>
      gate(
        () => real.writeFile(path, data),
        // A kill in the middle of a write leaves the first half of the bytes.
        () =>
          real.writeFile(
            path,
            typeof data === 'string' ? data.slice(0, data.length >> 1) : data.subarray(0, data.length >> 1),
          ),
      ),
    rename: (from, to) => gate(() => real.rename(from, to)),
    remove: (path) => gate(() => real.remove(path)),
    list: (dir) => gate(() => real.list(dir)),
    read: (path) => gate(() => real.read(path)),
    makeDir: (dir) => gate(() => real.makeDir(dir)),
    syncDir: (dir) => gate(() => real.syncDir(dir)),
  };
  return fs;
}
