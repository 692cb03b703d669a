import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ResolvedRun, resolveRunConfig } from './config.js';
import { UsageError } from './errors.js';

/**
 * Run folders as the unit of `peft eval`, `predict` and `export`: the folder's manifest.json holds the fully
 * resolved config the run used, so `peft eval RUN_DIR` needs nothing else; a config file and flags given as well
 * override it, and are listed.
 */

/** What `peft train` recorded about a run that later commands use. */
export interface RunManifest {
  /** The run folder. */
  readonly dir: string;
  /** manifest.json's `config`: the resolved run config. */
  readonly config: Record<string, unknown>;
  /** Class names in label order, when the data has them (image folders). */
  readonly classNames?: readonly string[];
  /** The splits the final model trained on (`train+val` …), when recorded. */
  readonly trainedOn?: readonly string[];
}

/** Whether `path` is a run folder (a directory holding manifest.json). */
export function isRunFolder(path: string | undefined): path is string {
  if (path === undefined) return false;
  try {
    return statSync(path).isDirectory() && existsSync(join(path, 'manifest.json'));
  } catch {
    return false;
  }
}

/** Reads a run folder's manifest.json; every problem names the file. */
export async function readRunManifest(dir: string): Promise<RunManifest> {
  const file = join(dir, 'manifest.json');
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new UsageError(`${file}: cannot read the run's manifest (${(error as Error).message})`);
  }
  const manifest = json as { config?: unknown; data?: { classNames?: unknown }; trainedOn?: unknown };
  if (typeof manifest.config !== 'object' || manifest.config === null || Array.isArray(manifest.config))
    throw new UsageError(`${file}: no "config" object: not a run folder written by peft train`);
  const names = manifest.data?.classNames;
  return {
    dir,
    config: manifest.config as Record<string, unknown>,
    ...(Array.isArray(names) ? { classNames: names.map(String) } : {}),
    ...(Array.isArray(manifest.trainedOn) ? { trainedOn: manifest.trainedOn.map(String) } : {}),
  };
}

/** A run config on top of a run folder's, and the lines saying so. */
export interface RunFromFolder {
  readonly run: ResolvedRun;
  readonly manifest: RunManifest;
  /** `using the config of … ; overridden here: --backend=cpu`. */
  readonly notes: readonly string[];
}

/** The config of run folder `dir` under an optional config file and flags (which override it and are listed). */
export async function resolveRunFolder(
  dir: string,
  sources: { file?: string; flags: readonly (readonly [string, unknown])[] },
): Promise<RunFromFolder> {
  const manifest = await readRunManifest(dir);
  const run = await resolveRunConfig({
    base: { config: manifest.config, label: join(dir, 'manifest.json') },
    ...(sources.file ? { file: sources.file } : {}),
    flags: sources.flags,
  });
  const overrides = [
    ...(sources.file ? [sources.file] : []),
    ...sources.flags.map(
      ([path, value]) => `--${path}=${typeof value === 'string' ? value : JSON.stringify(value)}`,
    ),
  ];
  const notes = [
    `using the config of run ${dir} (manifest.json)${overrides.length > 0 ? `; overridden here: ${overrides.join(' ')}` : ''}`,
  ];
  return { run, manifest, notes };
}
