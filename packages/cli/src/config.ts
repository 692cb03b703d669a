import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { type RunConfig, optionPaths, runConfigSchema } from './options.js';

/** A mistake in what the user typed (exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Edit distance, for did-you-mean suggestions. */
export function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(
        (row[j] as number) + 1,
        (row[j - 1] as number) + 1,
        previous + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      previous = current;
    }
  }
  return row[b.length] as number;
}

/**
 * A ` (did you mean "x"?)` suffix naming the candidate closest to `word` (case-insensitive Levenshtein
 * distance), or `''` when even the closest is more than max(2, ⌊length/3⌋) edits away.
 */
export function didYouMean(word: string, candidates: readonly string[]): string {
  let best = '';
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = levenshtein(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean "${best}"?)` : '';
}

/** Parses a flag value: JSON when it parses (numbers, booleans, objects), otherwise the raw string. */
export function parseFlagValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    // Not JSON: a plain string such as a path or an enum value.
    return raw;
  }
}

/** Sets `path` (dotted) in a nested object, creating sections as needed. */
export function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1] as string] = value;
}

export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new UsageError(
      `${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(error as Error).message}`,
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed))
    throw new UsageError(`${path}: the config must be a mapping`);
  return parsed as Record<string, unknown>;
}

function formatIssue(issue: z.core.$ZodIssue, source: string): string {
  const where = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    const prefix = where ? `${where}.` : '';
    const known = optionPaths();
    return issue.keys
      .map((key) => `${source}: unknown option "${prefix}${key}"${didYouMean(`${prefix}${key}`, known)}`)
      .join('\n');
  }
  return `${source}: option "${where}": ${issue.message}`;
}

/**
 * The resolved run config: file (JSON or YAML) ← `--section.key=value` overrides, validated strictly. Every
 * problem is reported at once, unknown keys with a did-you-mean.
 */
export async function resolveConfig(options: {
  file?: string;
  overrides?: Readonly<Record<string, unknown>>;
}): Promise<RunConfig> {
  const raw = options.file ? await readConfigFile(options.file) : {};
  const known = optionPaths();
  for (const [path, value] of Object.entries(options.overrides ?? {})) {
    if (!known.includes(path)) throw new UsageError(`unknown flag --${path}${didYouMean(path, known)}`);
    setPath(raw, path, value);
  }
  const result = runConfigSchema().safeParse(raw);
  if (!result.success) {
    throw new UsageError(result.error.issues.map((i) => formatIssue(i, options.file ?? 'flags')).join('\n'));
  }
  return result.data;
}
