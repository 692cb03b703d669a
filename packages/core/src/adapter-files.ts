import type { VitConfig } from './config.js';
import { PeftError } from './errors.js';
import { type FileSetFs, readFileSet, writeFileSet } from './file-set.js';
import { type PeftModel, createPeftModel } from './model.js';
import type { PeftBackbone } from './backbone-api.js';
import type { JsonObject, PeftPlugin, PluginTier } from './plugin.js';
import { BACKBONE_OWNER, type ParameterEntry, type ParameterKind } from './registry.js';
import { type SafetensorsFile, parseSafetensors, serializeSafetensors } from './safetensors.js';
import { tf } from './tf.js';
import { Sha256 } from './sha256.js';
import { PEFTJS_VERSION } from './version.js';

/** Joins a folder and a file name with `/` (valid on every platform Node runs on, and in URLs). */
function joinPath(dir: string, file: string): string {
  return dir.endsWith('/') || dir.endsWith('\\') ? `${dir}${file}` : `${dir}/${file}`;
}

/**
 * PEFT-style adapter files: `adapter_config.json` (how to rebuild the plugins, against which base model) and
 * `adapter_model.safetensors` (every tensor that is not a frozen backbone weight: trainable parameters including
 * the head, and plugin buffers such as SHIP's prototype bank).
 */
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
/**
 * File name of the adapter's tensors inside an adapter directory (safetensors, every tensor stored as F32).
 */
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** Value of `AdapterConfig.format`: marks a JSON file as a PEFT.js adapter config. */
export const ADAPTER_FORMAT = 'peftjs-adapter';
/** Version of the adapter file layout this PEFT.js writes and the only one `loadAdapter` accepts. */
export const ADAPTER_FORMAT_VERSION = 1;

/**
 * How one plugin is rebuilt when an adapter is loaded (an entry of `AdapterConfig.plugins`, in run order).
 */
export interface AdapterPluginRecord {
  /**
   * Factory key (`PeftPlugin.type`, or its `name` when no type is set) looked up in
   * `LoadAdapterOptions.factories`.
   */
  type: string;
  /** The plugin's `name`; the rebuilt plugin must report the same one. */
  name: string;
  /** The plugin's own version when the adapter was saved (recorded, not checked on load). */
  version: string;
  /** The plugin's tensor namespace (`<prefix>.<name>`); the rebuilt plugin must report the same one. */
  prefix: string;
  /** The plugin's run tier (`'normal'` when the plugin did not set one). */
  tier: PluginTier;
  /**
   * A deep copy of `PeftPlugin.options`, passed to the factory to rebuild the plugin (`{}` when it had none).
   */
  options: JsonObject;
  /** The JSON artifacts the plugin recorded in `prepare`, handed back to its `restore` (`{}` when none). */
  artifacts: JsonObject;
}

/** Registry metadata of one saved tensor (an entry of `AdapterConfig.tensors`, keyed by parameter name). */
export interface AdapterTensorRecord {
  /** Tensor shape; on load it must equal the shape of the same-named tensor of the rebuilt model. */
  shape: number[];
  /**
   * Registry owner: `'head'`, a plugin name, or `'backbone'` for a backbone weight left trainable (full
   * fine-tuning, BitFit).
   */
  owner: string;
  /** `'weight'`, `'bias'` or `'buffer'` (non-trainable plugin state). */
  kind: ParameterKind;
  /** Whether the tensor was trainable when saved; restored on load for every kind except buffers. */
  trainable: boolean;
}

/**
 * Contents of `adapter_config.json`: everything besides the weights needed to rebuild a saved PEFT model on
 * its base.
 */
export interface AdapterConfig {
  /** Always `ADAPTER_FORMAT` (`'peftjs-adapter'`); any other value is rejected as `INVALID_CONFIG`. */
  format: typeof ADAPTER_FORMAT;
  /** `ADAPTER_FORMAT_VERSION` at save time; a different version is rejected as `INVALID_CONFIG`. */
  formatVersion: number;
  /** The library that wrote the file. */
  library: {
    /** Always `'peftjs'`. */
    name: 'peftjs';
    /** `PEFTJS_VERSION` of the writer. */
    version: string;
  };
  /**
   * Hook API version (`HOOK_SPEC_VERSION`) of the saved plugins, taken from the first one (1 without
   * plugins).
   */
  hookSpecVersion: number;
  /** The base backbone the adapter was trained on; `loadAdapter` refuses any other. */
  base: {
    /** Backbone geometry (the head's class count is `numClasses` below). */
    config: Omit<VitConfig, 'numClasses' | 'dropPathRate'>;
    /** sha256 over the frozen backbone weights, in name order. */
    fingerprint: string;
    /** Number of scalar values in the frozen backbone weights (head excluded); informational. */
    parameters: number;
  };
  /** Number of classes of the saved head; the rebuilt model gets a head of this size. */
  numClasses: number;
  /**
   * Root seed of the saved model (`PeftModel.rng.seed`), reused so the rebuilt model derives the same
   * streams.
   */
  seed: string;
  /** The plugins in resolved run order. */
  plugins: AdapterPluginRecord[];
  /** Every tensor in `adapter_model.safetensors` (all but frozen backbone weights), by parameter name. */
  tensors: Record<string, AdapterTensorRecord>;
}

/** A plugin factory: rebuilds a plugin from the JSON options it was saved with. */
export type PluginFactory = (options: JsonObject) => PeftPlugin;

/** Hash of every frozen backbone weight (not the head), so an adapter is only ever loaded onto its own base. */
export function backboneFingerprint(backbone: PeftBackbone): string {
  const hash = new Sha256();
  const entries = backbone.registry
    .list((e) => e.owner === BACKBONE_OWNER)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    hash.update(`${entry.name}:${entry.variable.shape.join('x')};`);
    const values = entry.variable.dataSync() as Float32Array;
    hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  return `sha256:${hash.hex()}`;
}

/** The backbone geometry with keys in a fixed order, so configs built in different ways compare equal. */
function geometryOf(config: VitConfig): AdapterConfig['base']['config'] {
  return {
    imageSize: [config.imageSize[0], config.imageSize[1]],
    patchSize: config.patchSize,
    channels: config.channels,
    dim: config.dim,
    depth: config.depth,
    heads: config.heads,
    mlpHidden: config.mlpHidden,
    layerNormEps: config.layerNormEps,
    qkvBias: config.qkvBias,
  };
}

/** Marks a model-owned copy of a backbone tensor inside its plugin's namespace: `<prefix>.base.<timm name>`. */
const BASE_COPY_SEGMENT = 'base';

/**
 * The tensors an adapter holds: what the model owns and trains or keeps — the head, every plugin parameter and
 * buffer, and the copies of backbone tensors a plugin trains (full fine-tuning, BitFit). Never a shared backbone
 * weight, and never a copy that only serves inference (a merged LoRA weight): both are derived from the base.
 */
function adapterEntries(model: PeftModel): ParameterEntry[] {
  return model.registry.list((e) => !e.shared && (e.copiedFor === undefined || e.trainable));
}

/**
 * The name a tensor has in `adapter_model.safetensors`: its registry name, except for a plugin's copy of a backbone
 * tensor, stored as `<plugin prefix>.base.<backbone name>` so that every name in an adapter file lies in the head
 * or in one of its plugins' namespaces.
 */
function adapterTensorName(model: PeftModel, entry: ParameterEntry): string {
  if (entry.copiedFor === undefined) return entry.name;
  const plugin = model.plugins.find((p) => p.name === entry.copiedFor);
  if (!plugin) throw new PeftError('PARAMETER_INVALID', `"${entry.name}" was copied for an unknown plugin`);
  return `${plugin.prefix}.${BASE_COPY_SEGMENT}.${entry.name}`;
}

/** The names an adapter file of `model` holds, mapped to the registry entries they restore. */
function adapterNameMap(model: PeftModel): Map<string, ParameterEntry> {
  return new Map(adapterEntries(model).map((e) => [adapterTensorName(model, e), e]));
}

/** An adapter as the two files `saveAdapter` writes, in memory (`serializeAdapter`). */
export interface SerializedAdapter {
  /** The parsed contents of `adapter_config.json`. */
  config: AdapterConfig;
  /** The text of `adapter_config.json`. */
  configText: string;
  /** The bytes of `adapter_model.safetensors`. */
  weights: Uint8Array;
}

/**
 * The two adapter files of `model` in memory — what `saveAdapter` writes and what a browser offers for download;
 * `loadAdapterFromBytes` reads them back.
 */
export function serializeAdapter(model: PeftModel): SerializedAdapter {
  const artifacts = model.artifacts();
  const named = [...adapterNameMap(model)];
  const tensors: AdapterConfig['tensors'] = {};
  for (const [name, e] of named) {
    tensors[name] = { shape: [...e.variable.shape], owner: e.owner, kind: e.kind, trainable: e.trainable };
  }
  const config: AdapterConfig = {
    format: ADAPTER_FORMAT,
    formatVersion: ADAPTER_FORMAT_VERSION,
    library: { name: 'peftjs', version: PEFTJS_VERSION },
    hookSpecVersion: model.plugins[0]?.specVersion ?? 1,
    base: {
      config: geometryOf(model.config),
      fingerprint: backboneFingerprint(model.backbone),
      parameters: model.backbone.registry
        .list((e) => e.owner === BACKBONE_OWNER)
        .reduce((n, e) => n + e.variable.size, 0),
    },
    numClasses: model.config.numClasses,
    seed: model.rng.seed,
    plugins: model.plugins.map((p) => ({
      type: p.type ?? p.name,
      name: p.name,
      version: p.version,
      prefix: p.prefix,
      tier: p.tier ?? 'normal',
      options: structuredClone(p.options ?? {}),
      artifacts: artifacts[p.name] ?? {},
    })),
    tensors,
  };
  const weights = serializeSafetensors(
    named.map(([name, e]) => ({
      name,
      shape: e.variable.shape,
      data: e.variable.dataSync() as Float32Array,
    })),
    {
      format: 'pt',
      library: 'peftjs',
      library_version: PEFTJS_VERSION,
      base_fingerprint: config.base.fingerprint,
    },
  );
  return { config, configText: `${JSON.stringify(config, null, 2)}\n`, weights };
}

/** Options of `saveAdapter` and `loadAdapter`'s file access. */
export interface AdapterFileOptions {
  /** Filesystem calls (default Node's); fault-injection tests pass their own. */
  readonly fs?: FileSetFs;
}

/**
 * Writes `adapter_config.json` and `adapter_model.safetensors` into `dir` as one generation (`writeFileSet`): a
 * crash at any point leaves the previous adapter or the new one, never new weights with an old config.
 */
export async function saveAdapter(
  model: PeftModel,
  dir: string,
  options: AdapterFileOptions = {},
): Promise<AdapterConfig> {
  const { config, configText, weights } = serializeAdapter(model);
  await writeFileSet(
    dir,
    [
      { name: ADAPTER_WEIGHTS_FILE, data: weights },
      { name: ADAPTER_CONFIG_FILE, data: configText },
    ],
    options,
  );
  return config;
}

/** Options of `loadAdapter` and `loadAdapterFromBytes`. */
export interface LoadAdapterOptions {
  /** Factories by plugin type; every plugin type in the adapter must have one. */
  factories: Readonly<Record<string, PluginFactory>>;
  /** Refuse a base whose weights differ from the one the adapter was trained on (default true). */
  verifyFingerprint?: boolean;
}

function readJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new PeftError('INVALID_CONFIG', `${path} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function checkConfigShape(value: unknown, path: string): AdapterConfig {
  const c = value as AdapterConfig;
  if (typeof value !== 'object' || value === null || c.format !== ADAPTER_FORMAT) {
    throw new PeftError(
      'INVALID_CONFIG',
      `${path}: not a PEFT.js adapter config (format must be "${ADAPTER_FORMAT}")`,
    );
  }
  if (c.formatVersion !== ADAPTER_FORMAT_VERSION) {
    throw new PeftError(
      'INVALID_CONFIG',
      `${path}: adapter format version ${String(c.formatVersion)} is not supported (this PEFT.js reads ${ADAPTER_FORMAT_VERSION})`,
    );
  }
  if (!Array.isArray(c.plugins) || typeof c.tensors !== 'object' || typeof c.base !== 'object') {
    throw new PeftError('INVALID_CONFIG', `${path}: "plugins", "tensors" and "base" are required`);
  }
  return c;
}

/**
 * Rebuilds a PEFT model on `base` from an adapter directory: the plugins come from their saved options and
 * artifacts (never from defaults), the base must match the saved geometry and fingerprint, and every saved tensor
 * must match a tensor of the rebuilt model by name and shape — all mismatches are reported in one error.
 */
export async function loadAdapter(
  base: PeftBackbone,
  dir: string,
  options: LoadAdapterOptions & AdapterFileOptions,
): Promise<PeftModel> {
  let files: Map<string, Uint8Array | null>;
  try {
    files = await readFileSet(dir, [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE], options);
  } catch (error) {
    throw new PeftError('IO_FAILED', `cannot read adapter in ${dir}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const missing = [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE].filter((name) => !files.get(name));
  if (missing.length > 0) {
    throw new PeftError('IO_FAILED', `cannot read adapter in ${dir}: ${missing.join(' and ')} not found`);
  }
  const configText = new TextDecoder().decode(files.get(ADAPTER_CONFIG_FILE) as Uint8Array);
  const weightBytes = files.get(ADAPTER_WEIGHTS_FILE) as Uint8Array;
  return loadAdapterFromBytes(base, configText, weightBytes, { ...options, source: dir });
}

/**
 * `loadAdapter` for an adapter already in memory (browsers fetch the two files): `configText` is
 * `adapter_config.json`, `weightBytes` is `adapter_model.safetensors`. Everything is checked before the model is
 * built (geometry, fingerprint, the names and shapes in the weights file, finite values), so a refused adapter
 * allocates nothing; the shared base is never written to.
 */
export function loadAdapterFromBytes(
  base: PeftBackbone,
  configText: string,
  weightBytes: Uint8Array,
  options: LoadAdapterOptions & { source?: string },
): PeftModel {
  const dir = options.source ?? 'adapter';
  const configPath = joinPath(dir, ADAPTER_CONFIG_FILE);
  const weightsPath = joinPath(dir, ADAPTER_WEIGHTS_FILE);
  const config = checkConfigShape(readJson(configText, configPath), configPath);
  checkBase(base, config, configPath, options.verifyFingerprint ?? true);
  const file = parseSafetensors(weightBytes, { source: weightsPath });
  checkNamespace(base, config, file, weightsPath);
  checkHead(base, config, file, configPath);
  checkFinite(file, weightsPath);
  const plugins = rebuildPlugins(config, options.factories, configPath);
  const model = createPeftModel(base, plugins, { seed: config.seed, numClasses: config.numClasses });
  try {
    model.restoreArtifacts(Object.fromEntries(config.plugins.map((p) => [p.name, p.artifacts])));
    const expected = adapterNameMap(model);
    checkFits(expected, config, file, dir);
    for (const name of file.names()) {
      const entry = expected.get(name) as ParameterEntry;
      const host = file.getHost(name);
      const value = tf.tensor(host.data, host.shape, 'float32');
      entry.variable.assign(value);
      value.dispose();
      const record = config.tensors[name];
      if (record && entry.kind !== 'buffer') entry.trainable = record.trainable;
    }
    model.clearPromptCache();
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/** The adapter's geometry must be the base's, and (unless told otherwise) its fingerprint the base's. */
function checkBase(base: PeftBackbone, config: AdapterConfig, configPath: string, verify: boolean): void {
  const expectedGeometry = JSON.stringify(
    geometryOf({ ...config.base.config, numClasses: 1, dropPathRate: 0 }),
  );
  const actualGeometry = JSON.stringify(geometryOf(base.config));
  if (expectedGeometry !== actualGeometry) {
    throw new PeftError(
      'WEIGHTS_MISMATCH',
      `${configPath}: the adapter was trained on a backbone with geometry ${expectedGeometry}, ` +
        `but the base has ${actualGeometry}`,
    );
  }
  if (!verify) return;
  const fingerprint = backboneFingerprint(base);
  if (fingerprint !== config.base.fingerprint) {
    throw new PeftError(
      'WEIGHTS_MISMATCH',
      `${configPath}: base weights differ from the ones the adapter was trained on ` +
        `(fingerprint ${fingerprint} ≠ ${config.base.fingerprint}); pass verifyFingerprint: false to override`,
    );
  }
}

/**
 * An adapter file holds exactly its own tensors: the head (`head.weight`, `head.bias`) and names inside one of its
 * plugins' namespaces (`<prefix>.…`). Anything else — above all a backbone tensor's name — is refused, all names
 * in one error, before anything is built.
 */
function checkNamespace(
  base: PeftBackbone,
  config: AdapterConfig,
  file: SafetensorsFile,
  weightsPath: string,
): void {
  const prefixes = config.plugins.map((p) => `${p.prefix}.`);
  const outside = file
    .names()
    .filter((name) => name !== 'head.weight' && name !== 'head.bias')
    .filter((name) => !prefixes.some((prefix) => name.startsWith(prefix)));
  if (outside.length === 0) return;
  const baseNames = outside.filter((name) => base.registry.has(name));
  const others = outside.filter((name) => !base.registry.has(name));
  const parts = [
    baseNames.length > 0
      ? `backbone tensor name(s) ${baseNames.join(', ')} (an adapter never changes the base)`
      : '',
    others.length > 0 ? `unknown name(s) ${others.join(', ')}` : '',
  ].filter(Boolean);
  throw new PeftError(
    'WEIGHTS_MISMATCH',
    `${weightsPath}: refused: holds ${parts.join(' and ')}; an adapter may hold only the head and tensors in its ` +
      `plugins' namespaces (${prefixes.map((p) => `${p}*`).join(', ') || 'none'})`,
  );
}

/** The head the config declares must be the head the file holds, checked before a head is allocated. */
function checkHead(
  base: PeftBackbone,
  config: AdapterConfig,
  file: SafetensorsFile,
  configPath: string,
): void {
  const classes = config.numClasses;
  if (typeof classes !== 'number' || !Number.isInteger(classes) || classes <= 0) {
    throw new PeftError(
      'INVALID_CONFIG',
      `${configPath}: numClasses must be a positive integer; got ${String(classes)}`,
    );
  }
  const expected: Record<string, string> = {
    'head.weight': `${base.config.dim},${classes}`,
    'head.bias': `${classes}`,
  };
  for (const [name, shape] of Object.entries(expected)) {
    const saved = file.names().includes(name) ? file.entry(name).shape.join(',') : null;
    if (saved !== shape) {
      throw new PeftError(
        'INVALID_CONFIG',
        `${configPath}: numClasses ${classes} needs ${name} [${shape}] in the weights file; ` +
          `found ${saved === null ? 'none' : `[${saved}]`}`,
      );
    }
  }
}

/** NaN or infinite values in an adapter would silently give wrong predictions: refuse them, naming the tensors. */
function checkFinite(file: SafetensorsFile, weightsPath: string): void {
  const bad: string[] = [];
  for (const name of file.names()) {
    const { data } = file.getHost(name);
    let count = 0;
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i] as number)) count++;
    if (count > 0) bad.push(`${name} (${count} of ${data.length} values)`);
  }
  if (bad.length > 0) {
    throw new PeftError(
      'WEIGHTS_MISMATCH',
      `${weightsPath}: non-finite values (NaN or ±Inf) in ${bad.join(', ')}`,
    );
  }
}

/** Rebuilds every plugin from its saved options through the factory of its type. */
function rebuildPlugins(
  config: AdapterConfig,
  factories: Readonly<Record<string, PluginFactory>>,
  configPath: string,
): PeftPlugin[] {
  const unknown = config.plugins.filter((p) => !factories[p.type]).map((p) => p.type);
  if (unknown.length > 0) {
    throw new PeftError(
      'PLUGIN_INVALID',
      `${configPath}: no factory for plugin type(s) ${unknown.map((t) => `"${t}"`).join(', ')}; ` +
        `known: ${Object.keys(factories).join(', ') || '(none)'}`,
    );
  }
  return config.plugins.map((record) => {
    const plugin = (factories[record.type] as PluginFactory)(record.options);
    if (plugin.name !== record.name || plugin.prefix !== record.prefix) {
      throw new PeftError(
        'PLUGIN_INVALID',
        `${configPath}: factory "${record.type}" rebuilt plugin "${plugin.name}" (prefix "${plugin.prefix}") ` +
          `from options saved for "${record.name}" (prefix "${record.prefix}")`,
      );
    }
    return plugin;
  });
}

/** The file's tensors must be exactly the rebuilt model's adapter tensors, with the same shapes. */
function checkFits(
  expected: ReadonlyMap<string, ParameterEntry>,
  config: AdapterConfig,
  file: SafetensorsFile,
  dir: string,
): void {
  const problems: string[] = [];
  const saved = new Set(file.names());
  for (const name of Object.keys(config.tensors)) {
    if (!saved.has(name)) problems.push(`${name}: listed in the config but missing from the weights`);
  }
  for (const name of file.names()) {
    const entry = expected.get(name);
    if (!entry) {
      problems.push(`${name}: no such tensor in the rebuilt model`);
      continue;
    }
    const savedShape = file.entry(name).shape;
    if (entry.variable.shape.join(',') !== savedShape.join(',')) {
      problems.push(`${name}: saved [${savedShape}] vs model [${entry.variable.shape}]`);
    }
  }
  for (const name of expected.keys()) {
    if (!saved.has(name)) problems.push(`${name}: the rebuilt model has it but the adapter does not`);
  }
  if (problems.length > 0) {
    throw new PeftError(
      'WEIGHTS_MISMATCH',
      `${dir}: adapter does not fit the rebuilt model: ${problems.join('; ')}`,
    );
  }
}
