import type { VitConfig } from './config.js';
import {
  checkConfigShape,
  checkFinite,
  checkFits,
  checkHead,
  checkNamespace,
  readJson,
} from './adapter-checks.js';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_FORMAT,
  ADAPTER_FORMAT_VERSION,
  ADAPTER_WEIGHTS_FILE,
  type AdapterConfig,
  type PluginFactory,
} from './adapter-format.js';
import { PeftError } from './errors.js';
import { type FileSetFs, readFileSet, writeFileSet } from './file-set.js';
import { type PeftModel, createPeftModel } from './model.js';
import type { PeftBackbone } from './backbone-api.js';
import type { PeftPlugin } from './plugin.js';
import { BACKBONE_OWNER, type ParameterEntry } from './registry.js';
import { parseSafetensors, serializeSafetensors } from './safetensors.js';
import { tf } from './tf.js';
import { Sha256 } from './sha256.js';
import { PEFTJS_VERSION } from './version.js';

/** Joins a folder and a file name with `/` (valid on every platform Node runs on, and in URLs). */
function joinPath(dir: string, file: string): string {
  return dir.endsWith('/') || dir.endsWith('\\') ? `${dir}${file}` : `${dir}/${file}`;
}

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
