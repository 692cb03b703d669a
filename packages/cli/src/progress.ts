import type { TrainEvent } from '@peftjs/train';

/** Where the CLI writes: injectable so tests capture output. */
export interface Output {
  /** Writes `text` as is (callers add the newlines). */
  write(text: string): void;
  /** Whether the output is a terminal: then `Progress` redraws bars in place. */
  readonly isTTY: boolean;
}

/** An `Output` over a Node stream (`process.stdout`, `process.stderr`). */
export function streamOutput(stream: NodeJS.WriteStream): Output {
  return { write: (text) => stream.write(text), isTTY: Boolean(stream.isTTY) };
}

/** How long a phase may run in a log before its start is announced. */
const SILENCE_MS = 1000;

/** A running phase of `Progress.phase`. */
export interface Phase {
  /** Work done so far out of `total` (redraws the bar on a terminal). */
  tick(done: number, total: number): void;
  /** Ends the phase with a short result (`ok`, `3,000 images`); the elapsed time is added. */
  end(result?: string): void;
  /** Stops the phase without a result line (it failed; its error is reported elsewhere). */
  cancel(): void;
}

/**
 * Progress for long work: a redrawn bar on a terminal, plain lines otherwise (logs, CI). Phases are named by the
 * caller (`features`, `k-means`, `epochs`).
 */
export class Progress {
  private lastLine = '';
  /** Steps of the epoch in progress (from its `epoch-start` event) and how many of them are done. */
  private epoch = { steps: 0, done: 0 };

  constructor(private readonly out: Output) {}

  /** A bar (TTY) or nothing (plain mode reports only at milestones via `line`). */
  bar(label: string, done: number, total: number, detail = ''): void {
    if (!this.out.isTTY) return;
    const width = 24;
    const filled = total > 0 ? Math.round((done / total) * width) : 0;
    const text = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${detail}`;
    this.out.write(`\r${text.padEnd(this.lastLine.length)}`);
    this.lastLine = text;
  }

  /** A line that stays (ends any bar first). */
  line(text: string): void {
    if (this.lastLine) {
      this.out.write('\n');
      this.lastLine = '';
    }
    this.out.write(`${text}\n`);
  }

  /**
   * A phase that may take more than a second (loading weights, checking data, testing): on a terminal a bar that
   * `tick` fills and `end` replaces with the result and the time it took; in a log, the same end line, preceded by
   * a `label …` line once the phase has run for a second, so a log never sits silent.
   */
  phase(label: string): Phase {
    const started = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (this.out.isTTY) this.bar(label, 0, 0, '…');
    else {
      timer = setTimeout(() => this.line(`${label} …`), SILENCE_MS);
      timer.unref?.();
    }
    return {
      tick: (done, total) => this.bar(label, done, total),
      end: (result) => {
        clearTimeout(timer);
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        this.line(`${label}: ${result ?? 'done'} (${seconds} s)`);
      },
      cancel: () => {
        clearTimeout(timer);
        if (this.lastLine) {
          this.out.write('\n');
          this.lastLine = '';
        }
      },
    };
  }

  /**
   * Runs `work` as a phase (see `phase`): ended with `result(value)` when it succeeds; when it throws, the phase
   * stops without a word (the error says what happened) and the error propagates.
   */
  async timed<T>(
    label: string,
    work: (phase: Phase) => Promise<T>,
    result?: (value: T) => string,
  ): Promise<T> {
    const phase = this.phase(label);
    let value: T;
    try {
      value = await work(phase);
    } catch (error) {
      phase.cancel();
      throw error;
    }
    phase.end(result?.(value));
    return value;
  }

  /** Renders training events. */
  trainEvent(event: TrainEvent, epochs: number): void {
    switch (event.type) {
      case 'epoch-start':
        this.epoch = { steps: event.steps, done: 0 };
        break;
      case 'step':
        this.epoch.done++;
        this.bar(
          `epoch ${event.epoch + 1}/${epochs}`,
          this.epoch.done,
          this.epoch.steps,
          `loss ${event.loss.toFixed(4)} lr ${event.lr.toExponential(2)}`,
        );
        break;
      case 'epoch-end':
        this.line(
          `epoch ${event.epoch + 1}/${epochs}  loss ${event.loss.toFixed(4)}  lr ${event.lr.toExponential(2)}  ` +
            `${(event.elapsedMs / 1000).toFixed(1)} s`,
        );
        break;
      case 'eval':
        this.line(
          `  eval ${event.split} @ epoch ${event.epoch + 1}: top-1 ${(event.metrics.top1 * 100).toFixed(2)} %`,
        );
        break;
      case 'resume':
        this.line(`resumed at epoch ${event.epoch + 1} from ${event.dir}`);
        break;
      default:
        break;
    }
  }
}
