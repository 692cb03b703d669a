import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import {
  type MethodDefinition,
  type MethodPreset,
  type OptionProblem,
  checkOptions,
  didYouMean,
  optionKeysAt,
  optionRows,
} from '@peftjs/core';
import { closestMatch } from '@peftjs/core/internal';
import { LineCounter, isMap, isScalar, parseDocument, type Node as YamlNode } from 'yaml';
import { UsageError } from './errors.js';

// data-source.ts reads UsageError from here.
export { UsageError };
import { DEFAULT_METHOD, methodBaseDir, resolveMethod } from './methods.js';
import { RUN_CONFIG, type RunConfig } from './options.js';
import { type ConfigSource, Provenance } from './provenance.js';
import { findRecipe, leafPaths, recipeLayer, scaleRecipeWarmup } from './recipe.js';

type Mapping = Record<string, unknown>;

const isMapping = (value: unknown): value is Mapping =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The path below which keys belong to the method's own schema, checked once the method is known. */
const METHOD_OPTIONS = 'method.options';

/** `{a: 1, b: x}` → `--flag.a=1 --flag.b=x`, when a value looks like an object with unquoted keys. */
function perKeyHint(flag: string, raw: string): string {
  const body = /^\{(.*)\}$/s.exec(raw.trim())?.[1];
  const pairs = body?.split(',').map((pair) => /^\s*"?([\w-]+)"?\s*:\s*(.+?)\s*$/.exec(pair));
  if (!pairs || pairs.length === 0 || pairs.some((m) => m === null)) return '';
  const flags = pairs.map((m) => `--${flag}.${m?.[1]}=${m?.[2]}`).join(' ');
  const json = `{${pairs.map((m) => `"${m?.[1]}": ${m?.[2]}`).join(', ')}}`;
  return `; write --${flag}='${json}' (keys in double quotes) or ${flags}`;
}

/**
 * Parses the value of `--flag`: JSON when it parses (numbers, booleans, objects), otherwise the raw string. A value
 * that starts like a JSON object or array but does not parse is refused, naming the flag and what is wrong.
 */
export function parseFlagValue(raw: string, flag = 'option'): unknown {
  try {
    return JSON.parse(raw);
  } catch (error) {
    if (/^\s*[[{]/.test(raw)) {
      throw new UsageError(
        `--${flag}: '${raw}' is not valid JSON (${(error as Error).message})${perKeyHint(flag, raw)}`,
      );
    }
    // Not JSON: a plain string such as a path or an enum value.
    return raw;
  }
}

/** Sets `value` at dotted `path`; objects are merged into objects already there, key by key, deeply. */
function mergeAt(target: Mapping, path: readonly string[], value: unknown): void {
  const [head, ...rest] = path as [string, ...string[]];
  if (rest.length > 0) {
    if (!isMapping(target[head])) target[head] = {};
    mergeAt(target[head] as Mapping, rest, value);
  } else if (isMapping(value) && isMapping(target[head])) {
    for (const [key, child] of Object.entries(value)) mergeAt(target[head] as Mapping, [key], child);
  } else {
    target[head] = isMapping(value) ? structuredClone(value) : value;
  }
}

/** A config file read: its mapping and the line of each key. */
export interface ConfigDocument {
  /** The parsed mapping. */
  readonly mapping: Mapping;
  /** The 1-based line of a dotted path's key, or of its deepest ancestor in the file. */
  readonly lineOf: (path: string) => number | undefined;
}

/** The line of `path`'s key in a parsed YAML document (or of its deepest ancestor there). */
function keyLine(contents: YamlNode | null, lines: LineCounter, path: string): number | undefined {
  let node: unknown = contents;
  let line: number | undefined;
  for (const key of path.split('.')) {
    if (!isMap(node)) break;
    const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === key);
    const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
    if (!pair || !range) break;
    line = lines.linePos(range[0]).line;
    node = pair.value;
  }
  return line;
}

/** Reads a YAML or JSON config with the line of every key; duplicate keys are refused in both. */
export async function readConfigDocument(path: string): Promise<ConfigDocument> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  const kind = extname(path).toLowerCase() === '.json' ? 'JSON' : 'YAML';
  const lines = new LineCounter();
  // JSON is parsed as the YAML subset it is, so that a duplicate key is an error rather than silently dropped.
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, lineCounter: lines });
  const error = doc.errors[0];
  if (error) {
    throw new UsageError(`${path} is not valid ${kind}: ${error.message.split('\n')[0]?.replace(/:$/, '')}`);
  }
  const parsed: unknown = doc.toJS();
  if (parsed === null || parsed === undefined) return { mapping: {}, lineOf: () => undefined };
  if (!isMapping(parsed)) throw new UsageError(`${path}: the config must be a mapping`);
  return { mapping: parsed, lineOf: (p) => keyLine(doc.contents, lines, p) };
}

/** Reads a YAML or JSON config file's mapping (see `readConfigDocument`). */
export async function readConfigFile(path: string): Promise<Mapping> {
  return (await readConfigDocument(path)).mapping;
}

/** Every option path of the run config and of the method (sections included), for did-you-mean on flags. */
function knownPaths(method: MethodDefinition): string[] {
  const rows = [...optionRows(RUN_CONFIG), ...optionRows(method.options, METHOD_OPTIONS)].map(
    (row) => row.path,
  );
  return [
    ...new Set([...rows, ...rows.filter((p) => p.includes('.')).map((p) => p.split('.')[0] as string)]),
  ];
}

const lastKey = (path: string) => path.slice(path.lastIndexOf('.') + 1);

/** The known path closest to `path`, else one whose last key is closest to `path`'s last key. */
function suggestPath(path: string, known: readonly string[]): string | undefined {
  const near = closestMatch(path, known);
  if (near !== undefined) return near;
  const key = closestMatch(lastKey(path), known.map(lastKey));
  return key === undefined ? undefined : known.find((p) => lastKey(p) === key);
}

/** Refuses a flag whose path neither the run config nor the method's options have. */
function checkFlagPath(path: string, method: MethodDefinition): void {
  const keys = path.split('.');
  for (let depth = 0; depth < keys.length; depth++) {
    const prefix = keys.slice(0, depth);
    const inMethod = prefix.join('.').startsWith(METHOD_OPTIONS);
    const known = inMethod ? optionKeysAt(method.options, prefix.slice(2)) : optionKeysAt(RUN_CONFIG, prefix);
    if (prefix.join('.') === METHOD_OPTIONS && known === null) return;
    if (known === null || !known.includes(keys[depth] as string)) {
      const near = suggestPath(path, knownPaths(method));
      throw new UsageError(`unknown flag --${path}${near === undefined ? '' : ` (did you mean "${near}"?)`}`);
    }
  }
}

/** The closest key next to an unknown one, else a full option path ending in a key close to it. */
function suggestionFor(
  problem: OptionProblem,
  prefix: string,
  method: MethodDefinition | null,
): string | undefined {
  const parent = [prefix, ...problem.path.slice(0, -1).map(String)].filter(Boolean).join('.');
  if (problem.suggestion !== undefined)
    return parent ? `${parent}.${problem.suggestion}` : problem.suggestion;
  const key = String(problem.path[problem.path.length - 1]);
  const known = method ? knownPaths(method) : optionRows(RUN_CONFIG).map((row) => row.path);
  const near = closestMatch(key, known.map(lastKey));
  return near === undefined ? undefined : known.find((p) => lastKey(p) === near);
}

/** One problem as a sentence naming where the offending value came from. */
function describeProblem(
  problem: OptionProblem,
  prefix: string,
  provenance: Provenance,
  method: MethodDefinition | null,
): string {
  const path = [prefix, ...problem.path.map(String)].filter(Boolean).join('.');
  const source = provenance.describe(path);
  if (problem.kind === 'unknown') {
    const near = suggestionFor(problem, prefix, method);
    const hint = near === undefined ? '' : ` (did you mean "${near}"?)`;
    return source === `--${path}`
      ? `unknown flag --${path}${hint}`
      : `${source}: unknown option "${path}"${hint}`;
  }
  return `${source}: option "${path}": ${problem.message}`;
}

function refuse(
  problems: readonly OptionProblem[],
  prefix: string,
  provenance: Provenance,
  method: MethodDefinition | null,
): never {
  throw new UsageError(problems.map((p) => describeProblem(p, prefix, provenance, method)).join('\n'));
}

/** Where a run config comes from: a base config (a run folder's), a file, then flags (`[path, value]` in order). */
export interface ConfigSources {
  /**
   * A complete config beneath the file and flags, e.g. the `config` of a run folder's manifest.json (no recipe is
   * looked up under it: it was applied when that config was resolved).
   */
  readonly base?: {
    /** The config's keys. */
    readonly config: Record<string, unknown>;
    /** What errors call it (`runs/x/manifest.json`). */
    readonly label: string;
  };
  /** A YAML or JSON config file. */
  readonly file?: string;
  /**
   * A config already in memory instead of a file (a sweep's job): its value, the name errors give it, and the
   * folder module paths in `method.name` are relative to.
   */
  readonly config?: {
    /** The config object. */
    readonly value: Record<string, unknown>;
    /** What error messages call it (e.g. `sweep.yaml (job)`). */
    readonly source: string;
    /** The folder module paths in `method.name` are relative to. */
    readonly baseDir: string;
  };
  /** `--section.key=value` flags: each deep-merges into what the file says. */
  readonly flags?: readonly (readonly [string, unknown])[];
}

/** The backbone recipe a run config was resolved with (see recipe.ts). */
export interface AppliedRecipe {
  /** Where it was read. */
  readonly source: string;
  /** Why it applies (`found next to model.weights`). */
  readonly reason: string;
  /** The recipe's own description. */
  readonly description: string;
  /** Recipe values the run uses, by dotted path. */
  readonly applied: Readonly<Record<string, unknown>>;
  /** Recipe values something above it replaced, by dotted path, with what replaced them. */
  readonly overridden: Readonly<
    Record<
      string,
      {
        /** The value the run uses instead. */
        readonly value: unknown;
        /** Where it came from (`--train.lr`, `run.yaml:4`, `preset vtab:dtd`). */
        readonly by: string;
      }
    >
  >;
}

/** A run config resolved against its method. */
export interface ResolvedRun {
  /** Every option, defaults filled in (the method's options too), keys in schema order: ready to hash or save. */
  readonly config: RunConfig;
  /** The method `config.method.name` names. */
  readonly method: MethodDefinition;
  /** Notes from the applied preset (e.g. an implausible published learning rate). */
  readonly warnings: readonly string[];
  /** Where every value came from: a flag, a file and line, a manifest, a preset, the recipe, or the default. */
  readonly provenance: Provenance;
  /** The backbone recipe underneath the run's own settings, or null (none found, or `model.recipe: none`). */
  readonly recipe: AppliedRecipe | null;
  /** Lines worth printing before the run starts (how the recipe was fitted to the run). */
  readonly notes: readonly string[];
}

function presetLayer(preset: MethodPreset): Mapping {
  return {
    ...(preset.options ? { method: { options: preset.options } } : {}),
    ...(preset.train ? { train: preset.train } : {}),
  };
}

function findPreset(method: MethodDefinition, name: string, source: string): MethodPreset {
  const presets = method.presets ?? {};
  const preset = presets[name];
  if (!preset) {
    const known = Object.keys(presets);
    throw new UsageError(
      `${source}: option "preset": method "${method.name}" has no preset "${name}"${didYouMean(name, known)}` +
        (known.length > 0 ? `; known: ${known.slice(0, 24).join(', ')}` : ' (it has none)'),
    );
  }
  return preset;
}

/** `method.name` as the merged layers say, before validation; the default otherwise. */
function methodName(raw: Mapping): string {
  const name: unknown = isMapping(raw.method) ? raw.method.name : undefined;
  return typeof name === 'string' && name !== '' ? name : DEFAULT_METHOD;
}

/** The method `method.name` names; a refusal names where the name came from (`--method.name`, `run.yaml:3`). */
async function methodOf(raw: Mapping, provenance: Provenance, baseDir: string) {
  try {
    return await resolveMethod(methodName(raw), baseDir);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    const where = provenance.describe('method.name');
    throw new UsageError(`${where}: ${error.message.replace(/^option "method\.name": /, '')}`);
  }
}

/** Which recipe values the run uses and which something above the recipe replaced. */
function recipeUse(layer: Mapping, merged: Mapping, provenance: Provenance) {
  const applied: Record<string, unknown> = {};
  const overridden: Record<string, { value: unknown; by: string }> = {};
  for (const path of leafPaths(layer)) {
    const value = path
      .split('.')
      .reduce<unknown>((node, key) => (isMapping(node) ? node[key] : undefined), merged);
    if (provenance.kindOf(path) === 'recipe') applied[path] = value;
    else overridden[path] = { value, by: provenance.describe(path) };
  }
  return { applied, overridden };
}

/**
 * The run config, layer over layer: the schema defaults ← the backbone's recipe ← a method preset ← a base config
 * (a run folder's manifest) ← the file ← flags (deep merges). It is validated strictly against the run-config schema
 * and the method's own; every problem is reported at once, each naming the flag, file and line, preset or recipe it
 * came from, unknown keys with a did-you-mean.
 */
export async function resolveRunConfig(sources: ConfigSources): Promise<ResolvedRun> {
  const doc = sources.file ? await readConfigDocument(sources.file) : null;
  const raw: Mapping = {};
  // Layers from the bottom up; a later layer's source wins for the paths it sets.
  const layers: [path: string, value: unknown, source: ConfigSource][] = [];
  if (sources.base) {
    for (const [key, value] of Object.entries(sources.base.config)) mergeAt(raw, [key], value);
    layers.push(['', sources.base.config, { kind: 'manifest', label: sources.base.label }]);
  }
  if (doc && sources.file) {
    for (const [key, value] of Object.entries(doc.mapping)) mergeAt(raw, [key], value);
    layers.push(['', doc.mapping, { kind: 'file', label: sources.file, lineOf: doc.lineOf }]);
  } else if (sources.config) {
    const value = structuredClone(sources.config.value) as Mapping;
    for (const [key, child] of Object.entries(value)) mergeAt(raw, [key], child);
    layers.push(['', value, { kind: 'file', label: sources.config.source }]);
  }
  const flags = sources.flags ?? [];
  const userLayers = new Provenance();
  for (const [path, value, source] of layers) userLayers.record(path, value, source);
  for (const [path, value] of flags) {
    mergeAt(raw, path.split('.'), value);
    layers.push([path, value, { kind: 'flag', label: `--${path}` }]);
    userLayers.record(path, value, { kind: 'flag', label: `--${path}` });
  }
  const method = await methodOf(raw, userLayers, sources.config?.baseDir ?? methodBaseDir(sources.file));
  for (const [path] of flags) checkFlagPath(path, method);
  const first = checkOptions(RUN_CONFIG, raw);
  if (!first.ok) refuse(first.problems, '', userLayers, method);
  // A run folder's config is already complete: its recipe was applied when the run was resolved.
  const found = sources.base
    ? null
    : await findRecipe(
        first.value.model.recipe,
        first.value.model.weights,
        userLayers.describe('model.recipe'),
      );
  const recipe = found ? recipeLayer(found.recipe, method.name) : {};
  const warnings: string[] = [];
  const name = first.value.preset;
  const preset = name === null ? null : findPreset(method, name, userLayers.describe('preset'));
  const merged: Mapping = structuredClone(recipe);
  if (preset) for (const [key, value] of Object.entries(presetLayer(preset))) mergeAt(merged, [key], value);
  for (const [key, value] of Object.entries(raw)) mergeAt(merged, [key], value);
  const provenance = new Provenance();
  if (found) provenance.record('', recipe, { kind: 'recipe', label: `recipe ${found.source}` });
  if (preset) provenance.record('', presetLayer(preset), { kind: 'preset', label: `preset ${name}` });
  for (const [path, value, source] of layers) provenance.record(path, value, source);
  if (preset) warnings.push(...(preset.warnings ?? []).map((w) => `preset ${name}: ${w}`));
  const notes: string[] = [];
  const scaled = found ? scaleRecipeWarmup(merged, recipe, provenance) : null;
  if (scaled) notes.push(scaled);
  const second = checkOptions(RUN_CONFIG, merged);
  if (!second.ok) refuse(second.problems, '', provenance, method);
  const options = checkOptions(method.options, second.value.method.options);
  if (!options.ok) refuse(options.problems, METHOD_OPTIONS, provenance, method);
  const config = { ...second.value, method: { name: second.value.method.name, options: options.value } };
  const applied = found
    ? {
        source: found.source,
        reason: found.reason,
        description: found.recipe.description,
        ...recipeUse(recipe, merged, provenance),
      }
    : null;
  return { config, method, warnings, provenance, recipe: applied, notes };
}
