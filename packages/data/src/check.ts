import { stat } from 'node:fs/promises';
import { PeftError, invalidOption } from '@peftjs/core';
import { decodeImage, readRawImage, validateDecodeOptions } from './decode.js';
import { kindOf } from './files.js';
import type { IdxDataset } from './idx.js';
import { type InputLimits, resolveLimits } from './limits.js';
import { type DataProblem, type LabeledSample, type Split, formatProblem } from './split.js';

/** Options of `checkSplit` and `assertSplitValid`. */
export interface CheckOptions {
  /** Labels must lie in [0, numClasses) (default: the split's own `numClasses`; else only negatives fail). */
  readonly numClasses?: number;
  /** Also decode every image to catch corrupt files (slower). */
  readonly decode?: boolean;
  /** Decode exactly as training will (with `channels`); without it images are decoded at their own size. */
  readonly imageSize?: readonly [number, number];
  /** Channels to decode to when `decode` and `imageSize` are set (default 3). */
  readonly channels?: 1 | 3;
  /** Files checked in parallel (default 16). */
  readonly concurrency?: number;
  /** Size limits applied when decoding (default `DEFAULT_INPUT_LIMITS`). */
  readonly limits?: Partial<InputLimits>;
  /** Called as samples finish with how many are checked so far and the split's size (progress bars). */
  readonly onProgress?: (done: number, total: number) => void;
}

/** What `checkSplit` found. */
export interface CheckResult {
  /** True when no problem was found. */
  readonly ok: boolean;
  /** Every problem, sorted by line (split-wide problems without a line first). */
  readonly problems: DataProblem[];
}

/** How many problems `assertSplitValid` quotes before summarising the rest. */
const QUOTED_PROBLEMS = 20;

function where(sample: LabeledSample): { file: string; line?: number } {
  return sample.source ? { file: sample.source.file, line: sample.source.line } : { file: sample.path };
}

/** Lines that did not parse and labels that are not integers or fall outside [0, numClasses). */
export function labelProblems(split: Split, numClasses: number | undefined): DataProblem[] {
  const problems: DataProblem[] = [...(split.rejected ?? [])];
  for (const sample of split.samples) {
    const { label } = sample;
    if (!Number.isInteger(label)) {
      problems.push({ ...where(sample), message: `label ${label} is not an integer` });
    } else if (numClasses !== undefined && (label < 0 || label >= numClasses)) {
      problems.push({ ...where(sample), message: `label ${label} out of range [0, ${numClasses})` });
    } else if (label < 0) {
      problems.push({ ...where(sample), message: `label ${label} is negative` });
    }
  }
  return sortByLine(problems);
}

/** The same image listed twice. */
function duplicateProblems(split: Split): DataProblem[] {
  const problems: DataProblem[] = [];
  const firstSeen = new Map<string, LabeledSample>();
  for (const sample of split.samples) {
    const first = firstSeen.get(sample.path);
    if (!first) {
      firstSeen.set(sample.path, sample);
      continue;
    }
    const prior = first.source
      ? first.source.file === sample.source?.file
        ? `line ${first.source.line}`
        : `${first.source.file}:${first.source.line}`
      : 'an earlier sample';
    problems.push({ ...where(sample), message: `duplicate entry ${sample.path} (first listed at ${prior})` });
  }
  return problems;
}

/** The checks that need no file access: `labelProblems`, an empty split and duplicate entries. */
export function listProblems(split: Split, numClasses: number | undefined = split.numClasses): DataProblem[] {
  const problems = [...labelProblems(split, numClasses), ...duplicateProblems(split)];
  if (split.samples.length === 0) {
    problems.push({ file: split.file ?? split.name, message: `split "${split.name}" has no samples` });
  }
  return sortByLine(problems);
}

/** Stable sort by line; problems without a line (split-wide ones) come first. */
function sortByLine(problems: DataProblem[]): DataProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? -1) - (b.p.line ?? -1) || a.i - b.i)
    .map(({ p }) => p);
}

/** Runs `fn(0..n-1)` with at most `limit` calls in flight. */
export async function forEachLimit(
  n: number,
  limit: number,
  fn: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

/**
 * Checks a split before training; reads files but never writes. Finds malformed lines, non-integer or
 * out-of-range labels, an empty split, duplicate entries, missing files and (with `decode`) corrupt images.
 * Each problem names the list file and line (or the image, for samples found by walking folders).
 */
export async function checkSplit(split: Split, options: CheckOptions = {}): Promise<CheckResult> {
  const numClasses = options.numClasses ?? split.numClasses;
  if (numClasses !== undefined && !(Number.isInteger(numClasses) && numClasses > 0)) {
    invalidOption('numClasses', numClasses, 'a positive integer');
  }
  const channels = options.channels ?? 3;
  if (options.imageSize !== undefined) validateDecodeOptions({ size: options.imageSize, channels });
  const limits = resolveLimits(options.limits);
  const concurrency = options.concurrency ?? 16;
  if (!Number.isInteger(concurrency) || concurrency <= 0) {
    invalidOption('concurrency', concurrency, 'a positive integer');
  }

  const problems = listProblems(split, numClasses);
  const fileProblems: (DataProblem | undefined)[] = new Array(split.samples.length);
  const checked = new Set<string>();
  let done = 0;
  await forEachLimit(split.samples.length, concurrency, async (i) => {
    try {
      fileProblems[i] = await checkSample(
        split.samples[i] as LabeledSample,
        checked,
        options,
        channels,
        limits,
      );
    } finally {
      options.onProgress?.(++done, split.samples.length);
    }
  });
  for (const p of fileProblems) if (p) problems.push(p);
  const sorted = sortByLine(problems);
  return { ok: sorted.length === 0, problems: sorted };
}

/** The file problem of one sample (missing, not a regular file, corrupt), or undefined. */
async function checkSample(
  sample: LabeledSample,
  checked: Set<string>,
  options: CheckOptions,
  channels: 1 | 3,
  limits: InputLimits,
): Promise<DataProblem | undefined> {
  if (checked.has(sample.path)) return undefined; // a duplicate: already reported above
  checked.add(sample.path);
  const at = where(sample);
  const info = await stat(sample.path).catch(() => null);
  if (!info) return { ...at, message: `image file not found: ${sample.path}` };
  if (!info.isFile()) {
    return { ...at, message: `image path is not a regular file (${kindOf(info)}): ${sample.path}` };
  }
  if (!options.decode) return undefined;
  try {
    if (options.imageSize) await decodeImage(sample.path, { size: options.imageSize, channels, limits });
    else await readRawImage(sample.path, undefined, limits);
    return undefined;
  } catch (error) {
    const reason = error instanceof PeftError && error.cause instanceof Error ? error.cause : error;
    return { ...at, message: `corrupt or unreadable image ${sample.path}: ${(reason as Error).message}` };
  }
}

/** Problems of one label array quoted one by one before they are summarised. */
const QUOTED_LABELS = 20;

/**
 * Checks the labels of an IDX dataset against `numClasses` (default: the dataset's): every label outside
 * [0, numClasses) is a problem naming the labels file and the label's index (the first 20, then a count).
 */
export function checkIdxDataset(idx: IdxDataset, options: { numClasses?: number } = {}): CheckResult {
  const numClasses = options.numClasses ?? idx.numClasses;
  if (!(Number.isInteger(numClasses) && numClasses > 0)) {
    invalidOption('numClasses', numClasses, 'a positive integer');
  }
  const problems: DataProblem[] = [];
  let bad = 0;
  for (let i = 0; i < idx.labels.length; i++) {
    const label = idx.labels[i] as number;
    if (label >= 0 && label < numClasses) continue;
    bad++;
    if (bad <= QUOTED_LABELS) {
      problems.push({
        file: idx.files.labels,
        message: `label ${label} at index ${i} ${label < 0 ? 'is negative' : `out of range [0, ${numClasses})`}`,
      });
    }
  }
  if (bad > QUOTED_LABELS) {
    problems.push({
      file: idx.files.labels,
      message: `… and ${bad - QUOTED_LABELS} more labels outside [0, ${numClasses})`,
    });
  }
  return { ok: problems.length === 0, problems };
}

/** One `INVALID_CONFIG` error quoting the first problems as `file:line: message`, plus the total count. */
export function dataProblemsError(subject: string, problems: readonly DataProblem[]): PeftError {
  const quoted = problems.slice(0, QUOTED_PROBLEMS).map((p) => `  ${formatProblem(p)}`);
  if (problems.length > QUOTED_PROBLEMS) quoted.push(`  … and ${problems.length - QUOTED_PROBLEMS} more`);
  const count = `${problems.length} problem${problems.length === 1 ? '' : 's'}`;
  return new PeftError('INVALID_CONFIG', `${subject} failed data checks (${count}):\n${quoted.join('\n')}`);
}

/** `checkSplit`, throwing one `PeftError` that lists the first 20 problems and the total when any is found. */
export async function assertSplitValid(split: Split, options: CheckOptions = {}): Promise<void> {
  const result = await checkSplit(split, options);
  if (!result.ok) throw dataProblemsError(splitLabel(split), result.problems);
}

export function splitLabel(split: Split): string {
  return split.file ? `split "${split.name}" (${split.file})` : `split "${split.name}"`;
}
