/**
 * The checks `loadAdapterFromBytes` runs before it builds anything: the config's shape, the names the weights file
 * may hold, the head it declares, finite values, and that the file fits the rebuilt model exactly.
 */
import type { PeftBackbone } from './backbone-api.js';
import { ADAPTER_FORMAT, ADAPTER_FORMAT_VERSION, type AdapterConfig } from './adapter-format.js';
import { PeftError } from './errors.js';
import type { ParameterEntry } from './registry.js';
import type { SafetensorsFile } from './safetensors.js';

/** Parses JSON, naming the file when it is not. */
export function readJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new PeftError('INVALID_CONFIG', `${path} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** The config must be a PEFT.js adapter config of the version this library reads. */
export function checkConfigShape(value: unknown, path: string): AdapterConfig {
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
 * An adapter file holds exactly its own tensors: the head (`head.weight`, `head.bias`) and names inside one of its
 * plugins' namespaces (`<prefix>.…`). Anything else — above all a backbone tensor's name — is refused, all names
 * in one error, before anything is built.
 */
export function checkNamespace(
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
export function checkHead(
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
export function checkFinite(file: SafetensorsFile, weightsPath: string): void {
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

/** The file's tensors must be exactly the rebuilt model's adapter tensors, with the same shapes. */
export function checkFits(
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
