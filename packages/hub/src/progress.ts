/** The fields every progress event has. */
export interface HubProgressFields {
  /** The weights reference being resolved, as typed. */
  readonly reference: string;
  /** The file in the repository. */
  readonly file: string;
}

/** What a download reports while it runs. */
export type HubProgressEvent = HubProgressFields &
  (
    | {
        /** A transfer starts. */
        readonly type: 'start';
        /** Size of the file in bytes. */
        readonly size: number;
        /** Bytes already on disk from an earlier, interrupted transfer (0 for a fresh one). */
        readonly resumeFrom: number;
      }
    | {
        /** Bytes of the file on disk so far. */
        readonly type: 'progress';
        /** Bytes on disk. */
        readonly done: number;
        /** Size of the file in bytes. */
        readonly size: number;
      }
    | {
        /** The connection broke or the server failed; the next attempt resumes. */
        readonly type: 'retry';
        /** The attempt that failed (1-based). */
        readonly attempt: number;
        /** The byte the next attempt starts at. */
        readonly resumeFrom: number;
        /** What went wrong. */
        readonly reason: string;
      }
    | {
        /** Another process is fetching the same file: this one waits for it. */
        readonly type: 'waiting';
      }
    | {
        /** The file is verified and in the cache. */
        readonly type: 'done';
        /** Size of the file in bytes. */
        readonly size: number;
        /** Bytes transferred by this process. */
        readonly downloaded: number;
        /** Milliseconds from start to verified. */
        readonly ms: number;
        /** How the content was checked: the LFS sha256, or the git blob id of a small file. */
        readonly verified: 'sha256' | 'git-sha1';
      }
  );

/** Receives download progress events. */
export type HubProgressSink = (event: HubProgressEvent) => void;

/** Where a progress bar is drawn: `process.stderr` or anything with `write` and `isTTY`. */
export interface ProgressStream {
  /** Writes text as is. */
  write(text: string): unknown;
  /** Whether the stream is a terminal (then the bar redraws in place; otherwise a line per event). */
  readonly isTTY?: boolean;
}

const MB = 1e6;
/** Files smaller than this (config.json) get no bar. */
const BAR_MIN_BYTES = 1 << 20;
const REDRAW_MS = 100;

function megabytes(bytes: number): string {
  return (bytes / MB).toFixed(1);
}

/**
 * A progress renderer: on a terminal a bar redrawn in place (at most ten times a second), otherwise one line per
 * start, retry, wait and finish. Tokens never reach it: events carry references and file names only.
 */
export function progressBar(stream: ProgressStream): HubProgressSink {
  let lastDraw = 0;
  let started = 0;
  let drawn = false;
  const tty = Boolean(stream.isTTY);
  const line = (text: string) => {
    stream.write(`${drawn ? '\n' : ''}${text}\n`);
    drawn = false;
  };
  return (event) => {
    switch (event.type) {
      case 'start':
        started = Date.now();
        if (event.size < BAR_MIN_BYTES) return;
        if (!tty || event.resumeFrom > 0) {
          const resume = event.resumeFrom > 0 ? `, resuming at ${megabytes(event.resumeFrom)} MB` : '';
          line(`downloading ${event.file} of ${event.reference} (${megabytes(event.size)} MB${resume})`);
        }
        return;
      case 'progress': {
        if (!tty || event.size < BAR_MIN_BYTES) return;
        const now = Date.now();
        if (now - lastDraw < REDRAW_MS && event.done < event.size) return;
        lastDraw = now;
        const width = 24;
        const fraction = event.size > 0 ? event.done / event.size : 1;
        const filled = Math.round(fraction * width);
        const seconds = Math.max((now - started) / 1000, 1e-3);
        stream.write(
          `\r${event.file} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0)}% ` +
            `${megabytes(event.done)}/${megabytes(event.size)} MB ${megabytes(event.done / seconds)} MB/s   `,
        );
        drawn = true;
        return;
      }
      case 'retry':
        line(`${event.file} of ${event.reference}: ${event.reason}; resuming at byte ${event.resumeFrom}`);
        return;
      case 'waiting':
        line(`waiting for another process downloading ${event.file} of ${event.reference}`);
        return;
      case 'done':
        if (event.size < BAR_MIN_BYTES) return;
        line(
          `${event.file} of ${event.reference}: ${megabytes(event.size)} MB, ${event.verified} verified ` +
            `(${megabytes(event.downloaded)} MB downloaded in ${(event.ms / 1000).toFixed(1)} s)`,
        );
        return;
      default:
        return;
    }
  };
}

/** The sink for a `progress` option: `'auto'` draws only when stderr is a terminal. */
export function progressSink(option: boolean | 'auto' | HubProgressSink | undefined): HubProgressSink {
  if (typeof option === 'function') return option;
  const stderr = process.stderr;
  if (option === true || ((option ?? 'auto') === 'auto' && stderr.isTTY)) return progressBar(stderr);
  return () => {};
}
