import { open, readFile } from 'node:fs/promises';
import type { JobRecord } from './plan.js';

/**
 * The results file of a sweep: one JSON record per finished job, appended by the leader only (it holds the sweep
 * folder's lock). A crash can leave a partial last line; it is ignored on reading and cut before the next append,
 * so a record is either whole or absent. The latest record of an id wins (a failed job that is retried).
 */
export class ResultsFile {
  constructor(readonly path: string) {}

  /** Every record, by job id (latest wins). A damaged line other than a torn last one is an error naming it. */
  async read(): Promise<Map<string, JobRecord>> {
    const text = await readFile(this.path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const records = new Map<string, JobRecord>();
    const lines = text.split('\n');
    // Records end with a newline: the text after the last one is empty, or a record torn by a crash mid-append.
    const complete = lines.slice(0, -1);
    for (const [i, line] of complete.entries()) {
      if (line.trim() === '') continue;
      let record: JobRecord;
      try {
        record = JSON.parse(line) as JobRecord;
      } catch (error) {
        throw new Error(`${this.path}:${i + 1}: not a JSON record (${(error as Error).message})`);
      }
      if (typeof record.id !== 'string' || (record.status !== 'done' && record.status !== 'failed')) {
        throw new Error(`${this.path}:${i + 1}: not a sweep record (needs "id" and "status")`);
      }
      records.set(record.id, record);
    }
    return records;
  }

  /** Appends one record durably (fsync), first cutting a torn last line if a crash left one. */
  async append(record: JobRecord): Promise<void> {
    const handle = await open(this.path, 'a+');
    try {
      const { size } = await handle.stat();
      if (size > 0) {
        const last = Buffer.alloc(Math.min(size, 1 << 20));
        await handle.read(last, 0, last.length, size - last.length);
        const tail = last.lastIndexOf(0x0a);
        if (tail !== last.length - 1)
          await handle.truncate(tail < 0 ? size - last.length : size - last.length + tail + 1);
      }
      await handle.appendFile(`${JSON.stringify(record)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
