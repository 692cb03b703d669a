import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BASELINE_METHODS } from '@peftjs/baselines';
import {
  type MethodDefinition,
  type PluginDefinition,
  type PluginFactory,
  checkMethod,
  didYouMean,
  methodPluginDefinitions,
  pluginFactories,
} from '@peftjs/core';
import { REFERENCE_METHODS } from '@peftjs/references';
import { SHIP_METHOD } from '@peftjs/ship';
import { UsageError } from './errors.js';

/**
 * The methods `method.name` can name without a module: the only place the command line lists methods. Every
 * other part of it works from the definitions (options, capabilities), so a method loaded from a module gets the
 * same treatment.
 */
export const BUILTIN_METHODS: readonly MethodDefinition[] = [
  SHIP_METHOD,
  ...BASELINE_METHODS,
  ...REFERENCE_METHODS,
];

/** `method.name` when a config does not say: the first built-in method. */
export const DEFAULT_METHOD: string = (BUILTIN_METHODS[0] as MethodDefinition).name;

/** Whether `name` is a file path rather than a package name (relative, absolute, or ending in a script extension). */
function isPath(name: string): boolean {
  return name.startsWith('.') || isAbsolute(name) || /\.(m?js|ts)$/.test(name);
}

/** The file a package name resolves to from `baseDir` (the config file's folder), or null. */
function resolvePackage(name: string, baseDir: string): string | null {
  try {
    return createRequire(join(baseDir, 'package.json')).resolve(name);
  } catch {
    return null;
  }
}

/**
 * The method `name` names: a built-in method, or a module — a path (relative to `baseDir`, the config file's
 * folder) or a package name — whose `method` export (or default export) is a method definition.
 */
export async function resolveMethod(name: string, baseDir: string): Promise<MethodDefinition> {
  const builtin = BUILTIN_METHODS.find((m) => m.name === name);
  if (builtin) return builtin;
  const file = isPath(name) ? resolve(baseDir, name) : resolvePackage(name, baseDir);
  if (file !== null && isPath(name) && !existsSync(file)) {
    throw new UsageError(`option "method.name": no method module at ${file}`);
  }
  let module: Record<string, unknown>;
  try {
    module = (await import(file === null ? name : pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    const known = BUILTIN_METHODS.map((m) => m.name);
    throw new UsageError(
      `option "method.name": unknown method "${name}"${didYouMean(name, known)}: not a built-in method ` +
        `(${known.join(', ')}) nor a module that loads (${(error as Error).message.split('\n')[0]})`,
    );
  }
  const exported = module.method ?? module.default;
  if (exported === undefined) {
    throw new UsageError(
      `option "method.name": module "${name}" exports no "method" (or default) definition`,
    );
  }
  try {
    return checkMethod(exported);
  } catch (error) {
    throw new UsageError(`option "method.name": module "${name}": ${(error as Error).message}`);
  }
}

/**
 * Factories for every plugin the built-in methods and `method` can create: what `loadAdapter` needs to rebuild a
 * run's model.
 */
export function adapterFactories(method: MethodDefinition): Readonly<Record<string, PluginFactory>> {
  const definitions = new Map<string, PluginDefinition>();
  for (const m of [...BUILTIN_METHODS, method]) {
    for (const definition of methodPluginDefinitions(m)) definitions.set(definition.type, definition);
  }
  return pluginFactories(definitions.values());
}

/** The folder module paths in `method.name` are relative to: the config file's, else the working directory. */
export function methodBaseDir(configFile: string | undefined): string {
  return configFile ? dirname(resolve(configFile)) : process.cwd();
}
