import {
  type JsonObject,
  type JsonValue,
  PeftError,
  type PeftModel,
  backboneFingerprint,
} from '@peftjs/core';
import type { TrainingData } from './data.js';

/**
 * What a resumed run must share with its checkpoint besides the training options: the same base weights, the same
 * plugins with the same options, the same prepared artifacts (SHIP's hierarchy), the same head and the same data.
 * A checkpoint records it; `train({ resume: true })` refuses a run that differs, naming what differs.
 */
export interface RunIdentity {
  /** Fingerprint of the backbone (sha256 over its weights). */
  readonly base: string;
  /** Every plugin in run order: factory type, name and full options. */
  readonly plugins: readonly {
    /** Factory type the plugin was built from. */
    readonly type: string;
    /** The plugin's name in the model. */
    readonly name: string;
    /** Its full, resolved options. */
    readonly options: JsonObject;
  }[];
  /** What each plugin's data pass recorded. */
  readonly artifacts: Readonly<Record<string, JsonObject>>;
  /** Classes of the head. */
  readonly numClasses: number;
  /** Fingerprints of the training and validation data (null when the data cannot tell). */
  readonly data: {
    /** Fingerprint of the training split. */
    readonly train: string | null;
    /** Fingerprint of the validation split. */
    readonly val: string | null;
  };
}

/** The identity of a run of `model` on `splits`. */
export function runIdentity(
  model: PeftModel,
  splits: { readonly train: TrainingData; readonly val?: TrainingData },
): RunIdentity {
  return {
    base: backboneFingerprint(model.backbone),
    plugins: model.plugins.map((p) => ({
      type: p.type ?? p.name,
      name: p.name,
      options: structuredClone(p.options ?? {}),
    })),
    artifacts: model.artifacts(),
    numClasses: model.config.numClasses,
    data: { train: splits.train.fingerprint?.() ?? null, val: splits.val?.fingerprint?.() ?? null },
  };
}

/** The first path where two JSON values differ, with both values, or null when they are equal. */
function firstDifference(a: JsonValue | undefined, b: JsonValue | undefined, path: string): string | null {
  if (JSON.stringify(a) === JSON.stringify(b)) return null;
  const isObject = (v: JsonValue | undefined): v is JsonObject =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObject(a) && isObject(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const found = firstDifference(a[key], b[key], path ? `${path}.${key}` : key);
      if (found) return found;
    }
  }
  return `${path}: ${JSON.stringify(a) ?? 'absent'} then, ${JSON.stringify(b) ?? 'absent'} now`;
}

/**
 * Throws `CHECKPOINT_INVALID` when a checkpoint's identity differs from the run's, naming what differs (the
 * backbone, a plugin option, an artifact, the head, the data); a checkpoint without one (an older PEFT.js) cannot
 * prove it belongs to this run and is refused too.
 */
export function checkIdentity(saved: RunIdentity | undefined, current: RunIdentity, dir: string): void {
  const refuse = (what: string) => {
    throw new PeftError('CHECKPOINT_INVALID', `cannot resume from ${dir}: ${what}`);
  };
  if (!saved) refuse('the checkpoint does not record its model and data (written by an older PEFT.js)');
  const s = saved as RunIdentity;
  if (s.base !== current.base) {
    refuse(`the base weights differ from the checkpoint's (fingerprint ${current.base} now, ${s.base} then)`);
  }
  const names = (id: RunIdentity) => id.plugins.map((p) => `${p.type}:${p.name}`).join(', ');
  if (names(s) !== names(current)) refuse(`the plugins differ (${names(s)} then, ${names(current)} now)`);
  for (const [i, plugin] of current.plugins.entries()) {
    const diff = firstDifference(s.plugins[i]?.options, plugin.options, '');
    if (diff) refuse(`plugin "${plugin.name}" has other options (${diff})`);
  }
  const artifacts = firstDifference(s.artifacts as JsonObject, current.artifacts as JsonObject, '');
  if (artifacts) refuse(`the data pass recorded other artifacts (${artifacts})`);
  if (s.numClasses !== current.numClasses) {
    refuse(`the head has ${current.numClasses} classes now, ${s.numClasses} then`);
  }
  for (const split of ['train', 'val'] as const) {
    if (s.data[split] !== current.data[split]) {
      refuse(`the ${split} data differ (fingerprint ${current.data[split]} now, ${s.data[split]} then)`);
    }
  }
}
