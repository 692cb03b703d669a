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
import { parse as parseYaml } from 'yaml';
import { UsageError } from './errors.js';

// data-source.ts reads UsageError from here.
export { UsageError };
import { DEFAULT_METHOD, methodBaseDir, resolveMethod } from './methods.js';
import { RUN_CONFIG, type RunConfig } from './options.js';

type Mapping = Record<string, unknown>;

const isMapping = (value: unknown): value is Mapping =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The path below which keys belong to the method's own schema, checked once the method is known. */
const METHOD_OPTIONS = 'method.options';

/** Parses a flag value: JSON when it parses (numbers, booleans, objects), otherwise the raw string. */
export function parseFlagValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    // Not JSON: a plain string such as a path or an enum value.
    return raw;
  }
}

/** Where each value of a merged config came from: a dotted path → `run.yaml`, `--train.lr`, `preset vtab:dtd`. */
class Provenance {
  private readonly sources = new Map<string, string>();

  /** Records `source` for `path` and every path below it in `value`. */
  record(path: string, value: unknown, source: string): void {
    this.sources.set(path, source);
    if (isMapping(value)) {
      for (const [key, child] of Object.entries(value))
        this.record(path ? `${path}.${key}` : key, child, source);
    }
  }

  /** The source of `path` or of its closest recorded ancestor. */
  sourceOf(path: string): string {
    for (let p = path; p !== ''; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
      const found = this.sources.get(p);
      if (found !== undefined) return found;
    }
    return 'config';
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

/** Reads a YAML or JSON config; duplicate keys are refused in both (JSON is parsed as the YAML subset it is). */
export async function readConfigFile(path: string): Promise<Mapping> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  const kind = extname(path).toLowerCase() === '.json' ? 'JSON' : 'YAML';
  let parsed: unknown;
  try {
    parsed = parseYaml(text, { uniqueKeys: true, prettyErrors: true });
  } catch (error) {
    throw new UsageError(
      `${path} is not valid ${kind}: ${(error as Error).message.split('\n')[0]?.replace(/:$/, '')}`,
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isMapping(parsed)) throw new UsageError(`${path}: the config must be a mapping`);
  return parsed;
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
  const source = provenance.sourceOf(path);
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

/** Where a run config comes from: a file, then flags (`[path, value]` in command-line order). */
export interface ConfigSources {
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

/** A run config resolved against its method. */
export interface ResolvedRun {
  /** Every option, defaults filled in (the method's options too), keys in schema order: ready to hash or save. */
  readonly config: RunConfig;
  /** The method `config.method.name` names. */
  readonly method: MethodDefinition;
  /** Notes from the applied preset (e.g. an implausible published learning rate). */
  readonly warnings: readonly string[];
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

/** `method.name` as the flags (last wins) or the file say, before validation; the default otherwise. */
function methodName(raw: Mapping, flags: readonly (readonly [string, unknown])[]): string {
  let name: unknown = isMapping(raw.method) ? raw.method.name : undefined;
  for (const [path, value] of flags) {
    if (path === 'method.name') name = value;
    if (path === 'method' && isMapping(value) && value.name !== undefined) name = value.name;
  }
  return typeof name === 'string' && name !== '' ? name : DEFAULT_METHOD;
}

/**
 * The run config: the file ← flags (deep merge), then the named preset underneath, validated strictly against
 * the run-config schema and the method's own. Every problem is reported at once, each naming the file, flag or
 * preset it came from, unknown keys with a did-you-mean.
 */
export async function resolveRunConfig(sources: ConfigSources): Promise<ResolvedRun> {
  const raw = sources.config
    ? (structuredClone(sources.config.value) as Mapping)
    : sources.file
      ? await readConfigFile(sources.file)
      : {};
  const flags = sources.flags ?? [];
  const baseDir = sources.config?.baseDir ?? methodBaseDir(sources.file);
  const method = await resolveMethod(methodName(raw, flags), baseDir);
  // Layers from the bottom up; a later layer's source wins for the paths it sets.
  const layers: [path: string, value: unknown, source: string][] = [];
  const origin = sources.config?.source ?? sources.file;
  if (origin) layers.push(['', raw, origin]);
  for (const [path, value] of flags) {
    checkFlagPath(path, method);
    mergeAt(raw, path.split('.'), value);
    layers.push([path, value, `--${path}`]);
  }
  let provenance = new Provenance();
  for (const [path, value, source] of layers) provenance.record(path, value, source);
  const first = checkOptions(RUN_CONFIG, raw);
  if (!first.ok) refuse(first.problems, '', provenance, method);
  let merged = raw;
  const warnings: string[] = [];
  const name = first.value.preset;
  if (name !== null) {
    const preset = findPreset(method, name, provenance.sourceOf('preset'));
    merged = presetLayer(preset);
    for (const [key, value] of Object.entries(raw)) mergeAt(merged, [key], value);
    const withPreset = new Provenance();
    withPreset.record('', presetLayer(preset), `preset ${name}`);
    for (const [path, value, source] of layers) withPreset.record(path, value, source);
    provenance = withPreset;
    warnings.push(...(preset.warnings ?? []).map((w) => `preset ${name}: ${w}`));
  }
  const second = checkOptions(RUN_CONFIG, merged);
  if (!second.ok) refuse(second.problems, '', provenance, method);
  const options = checkOptions(method.options, second.value.method.options);
  if (!options.ok) refuse(options.problems, METHOD_OPTIONS, provenance, method);
  const config = { ...second.value, method: { name: second.value.method.name, options: options.value } };
  return { config, method, warnings };
}
