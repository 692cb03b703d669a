import { type JsonValue, type MethodDefinition, type OptionRow, optionRows } from '@peftjs/core';
import { BUILTIN_METHODS } from './methods.js';
import { RUN_CONFIG } from './options.js';

/** Where method options live in the run config. */
export const METHOD_OPTIONS_PATH = 'method.options';

/** A default as `--help` and the docs tables show it: JSON, objects abbreviated (their fields have rows). */
export function formatDefault(value: JsonValue | undefined): string {
  if (value === undefined) return '—';
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return '{…}';
  return JSON.stringify(value);
}

/** Every option of the run config (`method.options` as one row: the method's own rows follow separately). */
export function runOptionRows(): OptionRow[] {
  return optionRows(RUN_CONFIG);
}

/** Every option of a method, under `method.options.`. */
export function methodOptionRows(method: MethodDefinition): OptionRow[] {
  return optionRows(method.options, METHOD_OPTIONS_PATH);
}

/** One `--help` line per option: `--path  description (default …)`. */
export function optionLines(rows: readonly OptionRow[]): string[] {
  return rows.map((row) => {
    const shown = row.default === undefined ? '' : ` (default ${formatDefault(row.default)})`;
    return `  --${row.path.padEnd(30)} ${row.description}${shown}`;
  });
}

/**
 * The run options a command reads: every one, or those under these paths (`model`, `train.batchSize`), except those
 * under a path written with a leading `!` (`!model.dropPathRate`).
 */
export type OptionScope = 'all' | readonly string[];

const under = (path: string, prefix: string) => path === prefix || path.startsWith(`${prefix}.`);

/** Whether option `path` is within `scope`. */
export function inScope(path: string, scope: OptionScope): boolean {
  if (scope === 'all') return true;
  const excluded = scope.filter((p) => p.startsWith('!')).map((p) => p.slice(1));
  return scope.some((p) => !p.startsWith('!') && under(path, p)) && !excluded.some((p) => under(path, p));
}

/**
 * The options section of `peft <command> --help`: the run options in the command's scope; for a command that builds
 * a model from a method (scope `all`), also the options of `method`, the methods and the method's presets.
 */
export function configHelp(method: MethodDefinition, scope: OptionScope = 'all'): string[] {
  if (scope !== 'all') {
    return [
      '',
      "Options (they override the run folder's config or the config file; flags --key=value):",
      ...optionLines(runOptionRows().filter((row) => inScope(row.path, scope))),
    ];
  }
  const presets = Object.keys(method.presets ?? {});
  return [
    '',
    'Run options (config file keys; each also a flag --key=value, objects merge into the file deeply):',
    ...optionLines(runOptionRows()),
    '',
    `Options of method "${method.name}" (--method.name=NAME shows another's). --method.options.KEY=value merges`,
    `into the file's method.options, and so does --method.options='{"KEY": value}':`,
    ...optionLines(methodOptionRows(method)),
    '',
    'Methods (method.name; or a module path or package exporting a method definition):',
    ...BUILTIN_METHODS.map((m) => `  ${m.name.padEnd(8)} ${m.description}`),
    ...(presets.length > 0 ? ['', `Presets of "${method.name}" (--preset KEY): ${presets.join(', ')}`] : []),
  ];
}
