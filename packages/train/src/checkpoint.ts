import { type FileSetFs, PeftError, type PeftModel, type Seed, tf } from '@peftjs/core';
import { readFileSet, writeFileSet } from '@peftjs/core/internal';
import {
  type HostTensor,
  type SafetensorsFile,
  type TensorToWrite,
  parseSafetensors,
  serializeSafetensors,
} from '@peftjs/core/safetensors';
import type { EvalMetrics } from './evaluate.js';
import type { Optimizer, OptimizerKind } from './optimizers.js';
import type { RunIdentity } from './identity.js';
import type { BestRecord, EpochRecord, RunFingerprint } from './types.js';

/**
 * File name of a checkpoint's tensors in its directory: `param/<name>` (trainable parameters), `opt/<key>`
 * (optimizer buffers) and, when kept, `best/<name>` (parameters at the best validation epoch).
 */
export const CHECKPOINT_TENSORS = 'checkpoint.safetensors';
/** File name of a checkpoint's JSON part (`CheckpointInfo`) in its directory. */
export const CHECKPOINT_JSON = 'checkpoint.json';
const FORMAT = 'peftjs-train-checkpoint';

/** `checkpoint.json`: everything but the tensors. */
export interface CheckpointInfo {
  /** Always `'peftjs-train-checkpoint'`. */
  readonly format: typeof FORMAT;
  /** Checkpoint layout version. */
  readonly version: 1;
  /** Epochs finished when the checkpoint was written: training resumes at this epoch. */
  readonly epochsCompleted: number;
  /** Optimizer steps taken so far. */
  readonly globalStep: number;
  /** The model's training-forward counter: it seeds DropPath and plugin dropout. */
  readonly forwardCounter: number;
  /** The optimizer's scalar state (its buffers are the `opt/` tensors). */
  readonly optimizer: {
    /** Which optimizer wrote it. */
    readonly kind: OptimizerKind;
    /** Number of `step` calls. */
    readonly step: number;
    /** Updates applied per parameter name. */
    readonly paramSteps: Readonly<Record<string, number>>;
  };
  /** Batch order is a function of (seed, epoch), so these are the whole shuffle state. */
  readonly shuffle: {
    /** Seed of the batch order. */
    readonly seed: Seed;
    /** The epoch whose order comes next. */
    readonly nextEpoch: number;
  };
  /** Every completed epoch so far. */
  readonly history: readonly EpochRecord[];
  /** The best epoch so far; null before any selection. */
  readonly best: BestRecord | null;
  /** Full metrics of the best epoch; null before any selection. */
  readonly bestMetrics: EvalMetrics | null;
  /** Whether `best/<param>` tensors (the parameters at the best validation epoch) are stored. */
  readonly hasBestParams: boolean;
  /** The run options; resuming with different ones throws `INVALID_OPTION` naming the first that differs. */
  readonly options: RunFingerprint;
  /** The model and data the run trained; resuming another throws `CHECKPOINT_INVALID` naming what differs. */
  readonly identity?: RunIdentity;
}

/** A checkpoint read back by `readCheckpoint`. */
export interface CheckpointContents {
  /** The parsed `checkpoint.json`. */
  readonly info: CheckpointInfo;
  /** The parsed `checkpoint.safetensors`. */
  readonly file: SafetensorsFile;
}

/** Host copies of the model's trainable tensors, by parameter name. */
export function snapshotTrainable(model: PeftModel): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const entry of model.registry.trainableEntries()) {
    const v = entry.variable;
    out[entry.name] = { shape: [...v.shape], data: (v.dataSync() as Float32Array).slice() };
  }
  return out;
}

/** Assigns host tensors to the model's parameters of the same names (shapes must match). */
export function assignTrainable(
  model: PeftModel,
  tensors: Readonly<Record<string, HostTensor>>,
  source: string,
) {
  for (const [name, host] of Object.entries(tensors)) {
    const variable = model.registry.get(name);
    if (variable.shape.join() !== host.shape.join()) {
      throw new PeftError(
        'CHECKPOINT_INVALID',
        `${source}: tensor "${name}" has shape [${host.shape}] but the model's parameter has [${variable.shape}]`,
      );
    }
    const value = tf.tensor(host.data.slice(), host.shape, 'float32');
    variable.assign(value);
    value.dispose();
  }
  model.clearPromptCache();
}

function firstNonFinite(tensors: readonly TensorToWrite[]): string | null {
  for (const t of tensors) {
    for (const x of t.data) if (!Number.isFinite(x)) return t.name;
  }
  return null;
}

/**
 * Writes `checkpoint.safetensors` (`param/`, `opt/…/`, `best/` tensors) and `checkpoint.json` as one generation
 * (`writeFileSet`): a crash at any step leaves the previous checkpoint or the new one, never neither and never a
 * mix. The safetensors metadata repeats the epoch and step as a second check. Returns the name of a non-finite
 * tensor instead of writing anything when there is one.
 */
export async function writeCheckpoint(
  dir: string,
  model: PeftModel,
  optimizer: Optimizer,
  info: Omit<CheckpointInfo, 'format' | 'version' | 'optimizer' | 'hasBestParams'>,
  bestParams: Readonly<Record<string, HostTensor>> | null,
  fs?: FileSetFs,
): Promise<{ nonFinite: string | null }> {
  const optState = optimizer.state();
  const tensors: TensorToWrite[] = [];
  for (const [name, t] of Object.entries(snapshotTrainable(model))) {
    tensors.push({ name: `param/${name}`, shape: t.shape, data: t.data });
  }
  for (const [key, t] of Object.entries(optState.tensors)) {
    tensors.push({ name: `opt/${key}`, shape: t.shape, data: t.data });
  }
  for (const [name, t] of Object.entries(bestParams ?? {})) {
    tensors.push({ name: `best/${name}`, shape: t.shape, data: t.data });
  }
  const nonFinite = firstNonFinite(tensors);
  if (nonFinite !== null) return { nonFinite };
  const full: CheckpointInfo = {
    format: FORMAT,
    version: 1,
    ...info,
    optimizer: { kind: optState.kind, step: optState.step, paramSteps: optState.paramSteps },
    hasBestParams: bestParams !== null,
  };
  const bytes = serializeSafetensors(tensors, {
    format: FORMAT,
    epochsCompleted: String(info.epochsCompleted),
    globalStep: String(info.globalStep),
  });
  await writeFileSet(
    dir,
    [
      { name: CHECKPOINT_TENSORS, data: bytes },
      { name: CHECKPOINT_JSON, data: `${JSON.stringify(full, null, 2)}\n` },
    ],
    fs ? { fs } : {},
  );
  return { nonFinite: null };
}

function reviveMetrics(metrics: EvalMetrics | null): EvalMetrics | null {
  // JSON turns NaN (classes without examples) into null.
  return metrics && { ...metrics, perClass: metrics.perClass.map((x) => (x === null ? Number.NaN : x)) };
}

/** Whether `dir` holds a checkpoint (its current generation has a `checkpoint.json`). */
export async function checkpointExists(dir: string): Promise<boolean> {
  const files = await readFileSet(dir, [CHECKPOINT_JSON]);
  return files.get(CHECKPOINT_JSON) !== null;
}

/** Reads and cross-checks the two checkpoint files of `dir` (the current generation, see `writeFileSet`). */
export async function readCheckpoint(dir: string, fs?: FileSetFs): Promise<CheckpointContents> {
  // node:path loads on use, so browsers can bundle train() (they never read checkpoints).
  const { join } = await import('node:path');
  const jsonPath = join(dir, CHECKPOINT_JSON);
  const tensorsPath = join(dir, CHECKPOINT_TENSORS);
  let files: Map<string, Uint8Array | null>;
  try {
    files = await readFileSet(dir, [CHECKPOINT_JSON, CHECKPOINT_TENSORS], fs ? { fs } : {});
  } catch (error) {
    throw new PeftError('IO_FAILED', `${dir}: ${(error as Error).message}`, { cause: error });
  }
  const jsonBytes = files.get(CHECKPOINT_JSON);
  const tensorBytes = files.get(CHECKPOINT_TENSORS);
  if (!jsonBytes) throw new PeftError('IO_FAILED', `${jsonPath}: file not found`);
  if (!tensorBytes) throw new PeftError('IO_FAILED', `${tensorsPath}: file not found`);
  let info: CheckpointInfo;
  try {
    info = JSON.parse(new TextDecoder().decode(jsonBytes)) as CheckpointInfo;
  } catch (error) {
    throw new PeftError('CHECKPOINT_INVALID', `${jsonPath}: not valid JSON (${(error as Error).message})`, {
      cause: error,
    });
  }
  if (info?.format !== FORMAT || info.version !== 1) {
    throw new PeftError('CHECKPOINT_INVALID', `${jsonPath}: not a ${FORMAT} version 1 file`);
  }
  const file = parseSafetensors(tensorBytes, { source: tensorsPath });
  const meta = file.metadata;
  if (meta.epochsCompleted !== String(info.epochsCompleted) || meta.globalStep !== String(info.globalStep)) {
    throw new PeftError(
      'CHECKPOINT_INVALID',
      `${tensorsPath} (epoch ${meta.epochsCompleted}, step ${meta.globalStep}) does not belong to ${jsonPath} ` +
        `(epoch ${info.epochsCompleted}, step ${info.globalStep})`,
    );
  }
  return { info: { ...info, bestMetrics: reviveMetrics(info.bestMetrics) }, file };
}

/** The tensors stored under `prefix`, by the rest of their name. */
export function tensorsWithPrefix(file: SafetensorsFile, prefix: string): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const name of file.names()) {
    if (name.startsWith(prefix)) out[name.slice(prefix.length)] = file.getHost(name);
  }
  return out;
}
