/** Where a sample was listed: the list file and its 1-based line. */
export interface SampleSource {
  readonly file: string;
  readonly line: number;
}

export interface LabeledSample {
  /** Absolute path of the image file. */
  readonly path: string;
  readonly label: number;
  /** The list file and line that named this sample; absent for samples found by walking folders. */
  readonly source?: SampleSource;
}

/** One data problem: the file at fault (a list file, or the image itself) and, where known, the line. */
export interface DataProblem {
  readonly file: string;
  readonly line?: number;
  readonly message: string;
}

export interface Split {
  readonly name: string;
  readonly samples: readonly LabeledSample[];
  readonly numClasses?: number;
  /** The list file this split was read from, if any. */
  readonly file?: string;
  /** Lines of the list file that could not be parsed into a sample (reported by `checkSplit`). */
  readonly rejected?: readonly DataProblem[];
}

/** `file:line: message`, or `file: message` when the line is unknown. */
export function formatProblem(problem: DataProblem): string {
  return problem.line === undefined
    ? `${problem.file}: ${problem.message}`
    : `${problem.file}:${problem.line}: ${problem.message}`;
}

/** ` (listed at file:line)` for error messages, or nothing. */
export function listedAt(source: SampleSource | undefined): string {
  return source ? ` (listed at ${source.file}:${source.line})` : '';
}
