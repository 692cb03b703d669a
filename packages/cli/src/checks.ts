import type { ResolvedRun } from './config.js';
import { UsageError } from './errors.js';

/**
 * Settings that make no sense together, found from the resolved config alone — before the backend starts, the
 * weights load or any data is read. Each message names where both values came from (flag, file:line, recipe,
 * default). A combination that cannot train is refused; one that only wastes effort is a note.
 */

/** `train.epochs = 5 (--train.epochs)`: a value with where it came from. */
function sourcedValue(run: ResolvedRun, path: string): string {
  const value = path
    .split('.')
    .reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], run.config);
  return `${path} = ${JSON.stringify(value)} (${run.provenance.describe(path)})`;
}

/**
 * Refuses what cannot train (a warm-up as long as the run: the learning rate would never reach its peak) and
 * returns notes about what only wastes effort (an evaluation interval longer than the run). Methods that fit
 * without training (`fit`) have no schedule to check.
 */
export function checkCombinations(run: ResolvedRun): string[] {
  if (run.method.fit) return [];
  const { epochs, warmupEpochs, evalEvery } = run.config.train;
  if (warmupEpochs > 0 && warmupEpochs >= epochs) {
    throw new UsageError(
      `${sourcedValue(run, 'train.warmupEpochs')} is not below ${sourcedValue(run, 'train.epochs')}: the learning rate ` +
        `would still be warming up when training ends. Lower train.warmupEpochs (e.g. ` +
        `--train.warmupEpochs=${Math.floor(epochs / 10)}) or raise train.epochs`,
    );
  }
  const notes: string[] = [];
  if (evalEvery > epochs) {
    notes.push(
      `${sourcedValue(run, 'train.evalEvery')} exceeds ${sourcedValue(run, 'train.epochs')}: only epochs 1 and ` +
        `${epochs} are evaluated, so the epoch count is chosen between those two`,
    );
  }
  return notes;
}

/** What the data says about a run, for `applyDataLimits`. */
export interface DataCounts {
  /** Images of the smallest split the method prepares or trains on. */
  readonly trainImages: number;
  /** Its file or name, for messages. */
  readonly trainSplit: string;
  /** Number of classes. */
  readonly numClasses: number;
}

/** Sets a dotted path inside a copy of the method options. */
function withValue(options: Record<string, unknown>, path: string, value: number): Record<string, unknown> {
  const copy = structuredClone(options);
  const keys = path.split('.');
  let node = copy;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[keys[keys.length - 1] as string] = value;
  return copy;
}

/**
 * The method's data-bound options (`dataLimits`) against the split sizes, once the lists are read and before any
 * image is decoded: a value someone set above its limit is refused (naming the flag or file:line), a recipe, preset
 * or default value is capped with a note. Returns the run to use and the notes.
 */
export function applyDataLimits(run: ResolvedRun, data: DataCounts): { run: ResolvedRun; notes: string[] } {
  const limits =
    run.method.dataLimits?.(run.config.method.options, {
      trainImages: data.trainImages,
      numClasses: data.numClasses,
    }) ?? [];
  let options = run.config.method.options as Record<string, unknown>;
  const notes: string[] = [];
  for (const limit of limits) {
    if (limit.value <= limit.max) continue;
    const path = `method.options.${limit.path}`;
    if (run.provenance.userSet(path)) {
      throw new UsageError(
        `${run.provenance.describe(path)}: ${path} = ${limit.value} is more than this data allows ` +
          `(${limit.max}): ${limit.reason} (${data.trainSplit}). Set it to at most ${limit.max}, e.g. ` +
          `--${path}=${limit.max}`,
      );
    }
    options = withValue(options, limit.path, limit.max);
    notes.push(
      `${path} ${limit.value} (${run.provenance.describe(path)}) capped at ${limit.max}: ${limit.reason} ` +
        `(${data.trainSplit})`,
    );
  }
  if (notes.length === 0) return { run, notes };
  const config = { ...run.config, method: { ...run.config.method, options } } as ResolvedRun['config'];
  return { run: { ...run, config }, notes };
}
