import type { z } from 'zod';
import type { PluginFactory } from './adapter-format.js';
import type { VitConfig } from './config.js';
import { PeftError } from './errors.js';
import type { PeftModel } from './model.js';
import { parseOptions, undocumentedOptions } from './options.js';
import {
  HOOK_SPEC_VERSION,
  type JsonObject,
  type PeftPlugin,
  type PluginTier,
  type PrepareData,
} from './plugin.js';

/**
 * Definitions: one object per plugin and per method, in the spirit of HF PEFT's `LoraConfig` plus its method
 * registry. A definition owns a **strict zod object schema** of its options in which every field has its default
 * and a description — the only place a default lives. Library functions (`lora(options)`), the `peft` command line,
 * adapter files, `--help` and the docs tables all derive from it.
 */

/** An options schema: a strict zod object whose fields all have a default and a description. */
export type OptionsSchema = z.ZodObject;

/** How to build one plugin from its options, and rebuild it from an adapter file. */
export interface PluginDefinition<S extends OptionsSchema = OptionsSchema> {
  /**
   * Factory key written to adapter files (`PeftPlugin.type`); every plugin `create` returns reports this type.
   */
  readonly type: string;
  /** The plugin's own version (semver), also `PeftPlugin.version`. */
  readonly version: string;
  /** One sentence: what the plugin does (shown in generated docs). */
  readonly description: string;
  /** The options: strict (unknown keys are errors), every field with `.default(…)` and `.describe(…)`. */
  readonly options: S;
  /**
   * Builds the plugin from parsed options (defaults filled in, types checked). It records them whole as
   * `PeftPlugin.options`, so a rebuild from an adapter file never depends on defaults that may change.
   */
  create(options: z.output<S>): PeftPlugin;
}

/**
 * Vector graphics a method hands over instead of PNG bytes (no rasteriser needed in the method's package, so it
 * also runs in browsers); the `peft` command line rasterises it to the PNG file named by the figure or file.
 */
export interface SvgImage {
  /** A complete SVG document. */
  readonly svg: string;
}

/** A file a method's data pass describes itself with (written by `peft prepare`). */
export interface MethodFile {
  /** File name inside the output folder, e.g. `prototypes.safetensors`. */
  readonly name: string;
  /** The contents; an `SvgImage` is written as a PNG (name the file `….png`). */
  readonly data: Uint8Array | string | SvgImage;
  /** One line saying what it holds (printed after writing). */
  readonly description: string;
}

/** The `prepare` capability: what a method's data pass (`PeftModel.prepare`) produced, as files. */
export interface MethodPrepare<O> {
  /** One line: what the data pass computes (shown by `peft prepare --help`). */
  readonly summary: string;
  /** Files describing a model whose `prepare` has run (the same pass `peft train` runs before training). */
  outputs(model: PeftModel, options: O): Promise<MethodFile[]>;
  /**
   * Artifacts that stand in for the data pass where data does not matter (speed benchmarks), keyed by plugin name
   * as `PeftModel.restoreArtifacts` takes them.
   */
  placeholder?(config: VitConfig, options: O): Record<string, JsonObject>;
}

/** A figure a method adds to a run report. */
export interface MethodFigure {
  /** File name in the run folder (PNG). */
  readonly file: string;
  /** Alt text / caption in report.md. */
  readonly caption: string;
  /** PNG bytes, or an `SvgImage` the command line rasterises to PNG. */
  readonly data: Uint8Array | SvgImage;
}

/** What a method adds to a run's report.md and results.json (the `report` capability). */
export interface MethodReport {
  /** Bullet lines for report.md (markdown, without the leading `- `). */
  readonly lines: readonly string[];
  /** Fields for results.json (under `method`). */
  readonly fields: JsonObject;
  /** Figures to write into the run folder and show in report.md. */
  readonly figures: readonly MethodFigure[];
}

/** Published settings for one task, applied with `peft train --preset <key>` under the config file and flags. */
export interface MethodPreset {
  /** One line: where the values come from. */
  readonly description: string;
  /** Method options it sets. */
  readonly options?: JsonObject;
  /** Training options it sets (names of `train()` options). */
  readonly train?: JsonObject;
  /** Values that are suspicious and why (printed when the preset is applied). */
  readonly warnings?: readonly string[];
}

/** The splits a `fit` sees, as batches of preprocessed images with labels (`PrepareBatch.labels` set). */
export interface FitData {
  /** Fitted first, to score each candidate setting (VTAB-1k: train800). */
  readonly select: PrepareData;
  /** Scores the candidates (VTAB-1k: val200); the best one (the first on ties) is chosen. */
  readonly val: PrepareData;
  /** Fitted last with the chosen setting (VTAB-1k: train800val200): what the returned model knows. */
  readonly trainval: PrepareData;
}

/** One setting a `fit` tried, with its score. */
export interface FitCandidate {
  /** The setting (e.g. `{ "k": 5 }`). */
  readonly setting: JsonObject;
  /** Its top-1 on the validation split, in [0, 1]. */
  readonly valTop1: number;
}

/** What `MethodFit.fit` decided, for results.json and the report. */
export interface FitOutcome {
  /** The chosen setting (e.g. `{ "k": 5 }`). */
  readonly chosen: JsonObject;
  /** Every candidate with its validation top-1, in the order tried. */
  readonly candidates: readonly FitCandidate[];
  /** Images the final model was fitted on (`trainval.size`). */
  readonly fittedOn: number;
}

/**
 * The `fit` capability: a method that learns without gradient steps (a reference such as k-nearest neighbours).
 * The command line calls it instead of `train()`, on a model freshly built from the method's plugins; the fitted
 * model is then tested, saved and reloaded like any other.
 */
export interface MethodFit<O> {
  /** One line: what fitting does (shown in generated docs). */
  readonly summary: string;
  /** Chooses a setting on `data.val` after fitting `data.select`, then fits `data.trainval` into `model`. */
  fit(model: PeftModel, data: FitData, options: O): Promise<FitOutcome>;
}

/** Counts of the data a run trains on, for `MethodCapabilities.dataLimits`. */
export interface DataFacts {
  /** Images of the smallest split the method prepares or trains on (VTAB-1k: train800). */
  readonly trainImages: number;
  /** Number of classes. */
  readonly numClasses: number;
}

/** An option whose value the data bounds (e.g. a prototype bank no larger than the training images). */
export interface OptionLimit {
  /** Dotted path inside the method's options, e.g. `hierarchy.prototypes`. */
  readonly path: string;
  /** The value the options hold. */
  readonly value: number;
  /** The largest value the data allows. */
  readonly max: number;
  /** Why, as a clause: `k-means needs at least one training image per prototype`. */
  readonly reason: string;
}

/** What a method has besides building its plugins: its name and the optional capabilities the `peft` CLI uses. */
export interface MethodCapabilities<S extends OptionsSchema = OptionsSchema> {
  /** What `method.name` says (e.g. `lora`). */
  readonly name: string;
  /**
   * Definitions of every plugin `create` may return, to rebuild them from adapter files. Default: the method
   * itself, when it is also a plugin definition.
   */
  readonly plugins?: readonly PluginDefinition[];
  /** The data pass's outputs (see `MethodPrepare`). */
  readonly prepare?: MethodPrepare<z.output<S>>;
  /** Lines, fields and figures for the run report of a trained model. */
  report?(model: PeftModel, options: z.output<S>): Promise<MethodReport>;
  /** Published per-task settings by key (e.g. `vtab:cifar100`). */
  readonly presets?: Readonly<Record<string, MethodPreset>>;
  /** Learning without gradient steps: the command line calls `fit` instead of `train()` (see `MethodFit`). */
  readonly fit?: MethodFit<z.output<S>>;
  /**
   * Options bounded by the data, checked after the split lists are read and before any image is decoded: a value
   * the user set above its limit is refused, a default or recipe value is capped with a note.
   */
  dataLimits?(options: z.output<S>, data: DataFacts): OptionLimit[];
}

/**
 * A PEFT method: what `method.name` selects. Optional capabilities let the command line treat every method —
 * built in or from npm — alike, without knowing any by name.
 */
export interface MethodDefinition<S extends OptionsSchema = OptionsSchema> extends MethodCapabilities<S> {
  /** The method's version (semver). */
  readonly version: string;
  /** One sentence: what the method does (shown by `--help` and in generated docs). */
  readonly description: string;
  /** The options: strict, every field with its default and description. */
  readonly options: S;
  /** The plugins, in the order `createPeftModel` should get them. */
  create(options: z.output<S>): PeftPlugin | PeftPlugin[];
}

function invalidDefinition(what: string, message: string): never {
  throw new PeftError('PLUGIN_INVALID', `${what}: ${message}`);
}

function checkCommon(what: string, definition: Record<string, unknown>): void {
  for (const key of ['version', 'description'] as const) {
    if (typeof definition[key] !== 'string' || definition[key] === '') {
      invalidDefinition(what, `"${key}" must be a non-empty string`);
    }
  }
  if (typeof definition.create !== 'function') invalidDefinition(what, '"create" must be a function');
  const options = definition.options as { def?: { type?: string; catchall?: { def?: { type?: string } } } };
  if (options?.def?.type !== 'object' || options.def.catchall?.def?.type !== 'never') {
    invalidDefinition(what, '"options" must be a strict zod object (z.strictObject)');
  }
  const missing = undocumentedOptions(definition.options as z.ZodType);
  if (missing.length > 0) {
    invalidDefinition(what, `options without a default or a description: ${missing.join(', ')}`);
  }
}

/** Checks a plugin definition (type, version, description, a documented strict schema, create) and returns it. */
export function definePlugin<S extends OptionsSchema>(definition: PluginDefinition<S>): PluginDefinition<S> {
  const what = `plugin definition "${String(definition?.type)}"`;
  if (typeof definition?.type !== 'string' || definition.type === '')
    invalidDefinition(what, '"type" must be a non-empty string');
  checkCommon(what, definition as unknown as Record<string, unknown>);
  return definition;
}

/** Checks a method definition (name, version, description, a documented strict schema, create) and returns it. */
export function defineMethod<S extends OptionsSchema>(definition: MethodDefinition<S>): MethodDefinition<S> {
  checkMethod(definition);
  return definition;
}

/** A definition that is both one plugin and a method made of it (e.g. LoRA). */
export interface PluginMethodDefinition<S extends OptionsSchema = OptionsSchema>
  extends PluginDefinition<S>,
    MethodCapabilities<S> {}

/** `definePlugin` and `defineMethod` at once, for a method that is a single plugin. */
export function definePluginMethod<S extends OptionsSchema>(
  definition: PluginMethodDefinition<S>,
): PluginMethodDefinition<S> {
  definePlugin(definition);
  checkMethod(definition);
  return definition;
}

/**
 * Checks that `value` is a usable method definition (for definitions loaded at run time, e.g. from a module the
 * command line imports) and returns it; throws `PLUGIN_INVALID` naming what is missing.
 */
export function checkMethod(value: unknown): MethodDefinition {
  const definition = value as MethodDefinition | null;
  const what = `method definition "${String(definition?.name)}"`;
  if (typeof value !== 'object' || value === null) invalidDefinition('method definition', 'not an object');
  if (typeof definition?.name !== 'string' || definition.name === '')
    invalidDefinition(what, '"name" must be a non-empty string');
  checkCommon(what, value as Record<string, unknown>);
  const { fit, dataLimits } = value as MethodDefinition;
  if (fit !== undefined && typeof fit?.fit !== 'function')
    invalidDefinition(what, '"fit" must be an object with a fit(model, data, options) function');
  if (dataLimits !== undefined && typeof dataLimits !== 'function')
    invalidDefinition(what, '"dataLimits" must be a function');
  for (const plugin of (value as MethodDefinition).plugins ?? []) definePlugin(plugin);
  return value as MethodDefinition;
}

/** Builds one plugin from unparsed options: parsed (and refused, with did-you-mean) under the definition's type. */
export function createPlugin<S extends OptionsSchema>(
  definition: PluginDefinition<S>,
  options?: z.input<S>,
): PeftPlugin {
  return definition.create(parseOptions(definition.options, options, definition.type));
}

/** Who a plugin is: what `pluginIdentity` puts at the start of a plugin object. */
export interface PluginIdentity {
  /** `PeftPlugin.type`: the definition's type. */
  readonly type: string;
  /** `PeftPlugin.version`. */
  readonly version: string;
  /** `PeftPlugin.name`. */
  readonly name: string;
  /** Tensor namespace; default the name with characters other than letters, digits and `_` replaced by `_`. */
  readonly prefix?: string;
  /** Hook tier; null or absent: `normal`. */
  readonly tier?: PluginTier | null;
}

/**
 * The fields a plugin object starts with — name, type, version, hook spec version, prefix, tier — and its parsed
 * options recorded whole as JSON (so an adapter file rebuilds it without relying on today's defaults).
 */
export function pluginIdentity(
  identity: PluginIdentity,
  options: object,
): Pick<PeftPlugin, 'name' | 'type' | 'version' | 'specVersion' | 'prefix' | 'tier' | 'options'> {
  const { type, version, name, prefix, tier } = identity;
  return {
    name,
    type,
    version,
    specVersion: HOOK_SPEC_VERSION,
    prefix: prefix ?? name.replace(/[^A-Za-z0-9_]/g, '_'),
    ...(tier !== undefined && tier !== null ? { tier } : {}),
    options: JSON.parse(JSON.stringify(options)) as JsonObject,
  };
}

/**
 * The library function of a plugin definition — options in (parsed by the schema, defaults filled in, unknown keys
 * refused), plugin out: `export const lora = pluginFunction(LORA_METHOD)`.
 */
export function pluginFunction<S extends OptionsSchema>(
  definition: PluginDefinition<S>,
): (options?: z.input<S>) => PeftPlugin {
  return (options) => createPlugin(definition, options);
}

/** Builds a method's plugins from unparsed options (parsed under the method's name). */
export function createMethodPlugins<S extends OptionsSchema>(
  definition: MethodDefinition<S>,
  options?: unknown,
): PeftPlugin[] {
  return [definition.create(parseOptions(definition.options, options, definition.name))].flat();
}

/** The plugin definitions that rebuild a method's plugins from adapter files. */
export function methodPluginDefinitions(method: MethodDefinition): readonly PluginDefinition[] {
  if (method.plugins) return method.plugins;
  const self = method as MethodDefinition & Partial<PluginDefinition>;
  return typeof self.type === 'string' ? [self as unknown as PluginDefinition] : [];
}

/**
 * `loadAdapter` factories derived from plugin definitions: each rebuilds its plugin from the options saved in the
 * adapter file, parsed strictly (an unknown key is an error, not silently dropped). Two definitions of one type
 * are an error.
 */
export function pluginFactories(
  definitions: Iterable<PluginDefinition>,
): Readonly<Record<string, PluginFactory>> {
  const factories: Record<string, PluginFactory> = {};
  for (const definition of definitions) {
    if (factories[definition.type] !== undefined) {
      throw new PeftError('PLUGIN_CONFLICT', `two plugin definitions have type "${definition.type}"`);
    }
    factories[definition.type] = (options: JsonObject) => {
      const plugin = createPlugin(definition, options);
      if ((plugin.type ?? plugin.name) !== definition.type) {
        invalidDefinition(
          `plugin definition "${definition.type}"`,
          `create returned a plugin of type "${plugin.type ?? plugin.name}"`,
        );
      }
      return plugin;
    };
  }
  return Object.freeze(factories);
}
