/** Where a sample was listed: the list file and its 1-based line. */
export interface SampleSource {
  /** Absolute path of the list file. */
  readonly file: string;
  /** 1-based line number in that file. */
  readonly line: number;
}

/** One image and its class label. */
export interface LabeledSample {
  /** Absolute path of the image file. */
  readonly path: string;
  /** Class index; `checkSplit` reports labels that are not integers or fall outside [0, numClasses). */
  readonly label: number;
  /** The list file and line that named this sample; absent for samples found by walking folders. */
  readonly source?: SampleSource;
}

/** One data problem: the file at fault (a list file, or the image itself) and, where known, the line. */
export interface DataProblem {
  /**
   * The list file at fault, or the image path for samples without a list (or the split name when it has no
   * file).
   */
  readonly file: string;
  /** 1-based line in `file`, when the problem is tied to one. */
  readonly line?: number;
  /** What is wrong, in words. */
  readonly message: string;
}

/** A named list of labeled samples (a list file, a VTAB split or an ImageFolder). */
export interface Split {
  /** Split name (e.g. `train800`; for list files the file name without extension unless given). */
  readonly name: string;
  /** The samples in listed (or sorted-folder) order. */
  readonly samples: readonly LabeledSample[];
  /** Number of classes, when known; labels must then lie in [0, numClasses). */
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
