import { PeftError } from './errors.js';
import { tf } from './tf.js';
import type { Tensor, Variable } from './tf.js';

/**
 * Every tensor a model owns, by name: backbone weights, the classification head, plugin parameters and plugin
 * buffers (non-trainable state such as SHIP's prototype bank). Optimizers take exactly `trainableVariables()`;
 * save/load and the parameter report read the same table, so they can never disagree.
 */
export type ParameterKind = 'weight' | 'bias' | 'buffer';

/** Owner of the backbone's weights and of the classification head in the registry and reports. */
export const BACKBONE_OWNER = 'backbone';
/**
 * Owner of the classification head (`head.weight` `[D, C]` and `head.bias` `[C]`) in the registry and
 * reports.
 */
export const HEAD_OWNER = 'head';

/** One registered tensor and its bookkeeping. */
export interface ParameterEntry {
  /** Unique dotted name, e.g. `blocks.3.attn.qkv.weight` or `<prefix>.<name>` for a plugin tensor. */
  readonly name: string;
  /** Who created it: `'backbone'`, `'head'`, or a plugin's name. */
  readonly owner: string;
  /**
   * `'weight'`, `'bias'` (the default for rank ≤ 1 tensors, norm scales included) or `'buffer'` (never
   * trainable, not counted as a parameter).
   */
  readonly kind: ParameterKind;
  /**
   * The tfjs variable holding the value (shared with the backbone's registry for adopted backbone weights).
   */
  readonly variable: Variable;
  /** Whether optimizers update it; always false for buffers and shared entries. */
  trainable: boolean;
  /** Decoupled weight decay applies (default: weights of rank ≥ 2; never biases, norms or buffers). */
  decay: boolean;
  /**
   * True for a backbone tensor a model adopted: the variable belongs to the backbone, is shared by every model
   * built on it and is read-only (see `sealVariable`). A model that trains it works on its own copy instead
   * (`ParameterRegistry.copyOnWrite`).
   */
  readonly shared: boolean;
  /**
   * For a model-owned copy of a backbone tensor: the name of the plugin that asked to train (or change) it. Its
   * adapter files store the copy under that plugin's namespace (see `@peftjs/core`'s adapter files).
   */
  readonly copiedFor?: string;
}

/** Options of `ParameterRegistry.register`. */
export interface ParameterOptions {
  /** Owner recorded for the entry (`'backbone'`, `'head'` or a plugin name). */
  owner: string;
  /** Default: `'bias'` for rank ≤ 1, `'weight'` otherwise. */
  kind?: ParameterKind;
  /** Default true; ignored (always false) for buffers. */
  trainable?: boolean;
  /** Whether decoupled weight decay applies (default: true for `'weight'` tensors of rank ≥ 2). */
  decay?: boolean;
}

/** Scalar counts of one owner's parameters (buffers excluded). */
export interface OwnerCount {
  /** Number of scalar values in the owner's parameters. */
  readonly total: number;
  /** How many of them are trainable. */
  readonly trainable: number;
}

/**
 * Counting convention (the one PEFT papers use): `trainable` counts every trainable parameter including the head;
 * `trainableWithoutHead` is the number papers quote as "tuned parameters"; buffers are not parameters.
 */
export interface ParameterReport {
  /** Scalar values in every parameter: backbone + head + plugins, buffers excluded. */
  readonly total: number;
  /** Trainable scalar values, head included. */
  readonly trainable: number;
  /** Trainable scalar values excluding the head: the "tuned parameters" figure PEFT papers quote. */
  readonly trainableWithoutHead: number;
  /** `total − trainable`. */
  readonly frozen: number;
  /** Scalar values in the head (trainable or not). */
  readonly head: number;
  /** Scalar values in buffers (non-trainable plugin state), counted apart from `total`. */
  readonly buffers: number;
  /** Parameter counts per owner (`'backbone'`, `'head'`, each plugin), buffers excluded. */
  readonly byOwner: Readonly<Record<string, OwnerCount>>;
  /** The counting convention in words (`PARAMETER_CONVENTION`), so a saved report explains itself. */
  readonly convention: string;
}

/** The counting convention `ParameterReport` follows, in words (copied into every report). */
export const PARAMETER_CONVENTION =
  'total = all parameters (backbone + head + plugins, no buffers); trainable includes the head; ' +
  'trainableWithoutHead is the figure PEFT papers quote; buffers (non-trainable plugin state) are counted apart';

const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.\-:/]*$/;

/**
 * The table of every tensor a model owns, by name (see `ParameterKind`). Names are dotted identifiers and
 * unique; a second registration of a name throws `PARAMETER_INVALID`.
 */
export class ParameterRegistry {
  private readonly entries = new Map<string, ParameterEntry>();

  /** Registers `value` (taken over, not copied) under `name` and returns its variable. */
  register(name: string, value: Tensor, options: ParameterOptions): Variable {
    if (!NAME_PATTERN.test(name)) {
      throw new PeftError(
        'PARAMETER_INVALID',
        `parameter name ${JSON.stringify(name)} is not a valid dotted name`,
      );
    }
    if (this.entries.has(name)) {
      const owner = this.entries.get(name)?.owner;
      throw new PeftError(
        'PARAMETER_INVALID',
        `parameter "${name}" is already registered by "${owner}"; "${options.owner}" cannot register it again`,
      );
    }
    const kind = options.kind ?? (value.rank <= 1 ? 'bias' : 'weight');
    // Unnamed variables: tfjs requires globally unique names, and two models may share parameter names.
    const variable = tf.variable(value, false);
    value.dispose();
    this.entries.set(name, {
      name,
      owner: options.owner,
      kind,
      variable,
      trainable: kind !== 'buffer' && (options.trainable ?? true),
      decay: options.decay ?? (kind === 'weight' && value.rank >= 2),
      shared: false,
    });
    return variable;
  }

  /**
   * Adds an entry that shares the variable of another registry (a PEFT model adopting its backbone's weights).
   * The entry is marked `shared`, never trainable, and its variable is sealed read-only.
   */
  adopt(entry: ParameterEntry, overrides: Partial<Pick<ParameterEntry, 'decay'>> = {}): void {
    if (this.entries.has(entry.name)) {
      throw new PeftError('PARAMETER_INVALID', `parameter "${entry.name}" is already registered`);
    }
    sealVariable(entry.variable, entry.name);
    const { copiedFor: _dropped, ...rest } = entry;
    this.entries.set(entry.name, { ...rest, ...overrides, trainable: false, shared: true });
  }

  /**
   * Replaces a shared entry by a copy this registry owns (same name, kind, owner and decay flag), registered for
   * plugin `copiedFor`, and returns the copy's variable; an entry that is already owned is returned as it is. The
   * copy shares the backbone's buffer until it is first assigned (tfjs tensors are immutable; `assign` swaps the
   * buffer), so it costs memory only once it changes: BitFit pays for its biases, not for the whole backbone.
   */
  copyOnWrite(name: string, copiedFor: string): Variable {
    const entry = this.entry(name);
    if (!entry.shared) return entry.variable;
    const variable = tf.variable(entry.variable, false);
    this.entries.set(name, { ...entry, variable, shared: false, copiedFor, trainable: false });
    return variable;
  }

  /**
   * Drops a model-owned copy of a backbone tensor and shares `original` (the backbone's entry) again: the
   * inverse of `copyOnWrite`.
   */
  restoreShared(original: ParameterEntry): void {
    const entry = this.entry(original.name);
    if (entry.shared) return;
    if (entry.copiedFor === undefined) {
      throw new PeftError(
        'PARAMETER_INVALID',
        `parameter "${original.name}" is not a copy of a backbone tensor`,
      );
    }
    entry.variable.dispose();
    this.entries.delete(original.name);
    this.adopt(original, { decay: entry.decay });
  }

  /** Whether a tensor named `name` is registered. */
  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The entry named `name`; throws `PARAMETER_INVALID` when there is none. */
  entry(name: string): ParameterEntry {
    const entry = this.entries.get(name);
    if (!entry) throw new PeftError('PARAMETER_INVALID', `no parameter named "${name}"`);
    return entry;
  }

  /** The variable named `name`; throws `PARAMETER_INVALID` when there is none. */
  get(name: string): Variable {
    return this.entry(name).variable;
  }

  /** Every entry in registration order, or those for which `filter` returns true (a new array). */
  list(filter?: (entry: ParameterEntry) => boolean): ParameterEntry[] {
    const all = [...this.entries.values()];
    return filter ? all.filter(filter) : all;
  }

  /** Every registered name, in registration order. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  /**
   * Sets `trainable` on every non-buffer entry `select` accepts; returns how many entries it set. Shared entries
   * cannot be trained in place: `onShared` decides (copy them first, see `copyOnWrite`); without it they throw
   * `BASE_READ_ONLY`.
   */
  setTrainable(
    select: (entry: ParameterEntry) => boolean,
    trainable: boolean,
    onShared?: (entry: ParameterEntry) => void,
  ): number {
    let changed = 0;
    for (const entry of [...this.entries.values()]) {
      if (entry.kind === 'buffer' || !select(entry)) continue;
      if (entry.shared && trainable) {
        if (!onShared) throw readOnlyError(entry.name);
        onShared(entry);
      }
      const current = this.entry(entry.name);
      if (!current.shared) current.trainable = trainable;
      changed++;
    }
    return changed;
  }

  /** The trainable entries, in registration order. */
  trainableEntries(): ParameterEntry[] {
    return this.list((e) => e.trainable);
  }

  /** The variables of the trainable entries, in registration order: what an optimizer should update. */
  trainableVariables(): Variable[] {
    return this.trainableEntries().map((e) => e.variable);
  }

  /** Counts scalar values by trainability and owner, following `PARAMETER_CONVENTION`. */
  report(): ParameterReport {
    let total = 0;
    let trainable = 0;
    let head = 0;
    let headTrainable = 0;
    let buffers = 0;
    const byOwner: Record<string, { total: number; trainable: number }> = {};
    for (const entry of this.entries.values()) {
      const size = entry.variable.size;
      if (entry.kind === 'buffer') {
        buffers += size;
        continue;
      }
      total += size;
      const owner = byOwner[entry.owner] ?? { total: 0, trainable: 0 };
      byOwner[entry.owner] = owner;
      owner.total += size;
      if (entry.owner === HEAD_OWNER) head += size;
      if (entry.trainable) {
        trainable += size;
        owner.trainable += size;
        if (entry.owner === HEAD_OWNER) headTrainable += size;
      }
    }
    return {
      total,
      trainable,
      trainableWithoutHead: trainable - headTrainable,
      frozen: total - trainable,
      head,
      buffers,
      byOwner,
      convention: PARAMETER_CONVENTION,
    };
  }

  /**
   * Disposes the variables this registry owns and removes their entries (or only those `only` accepts); shared
   * entries belong to their original registry and are only removed, never disposed.
   */
  dispose(only?: (entry: ParameterEntry) => boolean): void {
    for (const [name, entry] of this.entries) {
      if (only && !only(entry)) continue;
      if (!entry.shared) entry.variable.dispose();
      this.entries.delete(name);
    }
  }

  /** Removes entries without disposing their variables. */
  forget(select: (entry: ParameterEntry) => boolean): void {
    for (const [name, entry] of this.entries) if (select(entry)) this.entries.delete(name);
  }
}

function readOnlyError(name: string): PeftError {
  return new PeftError(
    'BASE_READ_ONLY',
    `backbone tensor "${name}" is shared by every model built on the backbone and is read-only; ` +
      'a plugin that trains it must ask through SetupContext.setTrainable, which gives the model its own copy',
  );
}

const SEALED = Symbol('peftjs.sealed');

/**
 * Makes `variable.assign` throw `BASE_READ_ONLY` (naming `name`): a backbone weight, once a model has adopted it,
 * never changes, whoever holds a reference to it (a plugin's `parameters()` view, an optimizer given the wrong
 * list). Idempotent. Disposing the variable still works.
 */
function sealVariable(variable: Variable, name: string): void {
  const marked = variable as Variable & { [SEALED]?: true };
  if (marked[SEALED]) return;
  Object.defineProperty(variable, 'assign', {
    configurable: false,
    enumerable: false,
    writable: false,
    value: () => {
      throw readOnlyError(name);
    },
  });
  Object.defineProperty(variable, SEALED, { value: true });
}
