import { z } from 'zod';
import { PeftError, describeValue } from './errors.js';
import type { JsonObject, JsonValue } from './plugin.js';
import { closestMatch } from './suggest.js';

/** One thing wrong with an options object, as `checkOptions` reports it. */
export interface OptionProblem {
  /** Where, from the options root: keys of nested objects and indices of arrays. */
  readonly path: readonly (string | number)[];
  /** `unknown`: a key the schema does not have; `invalid`: a value the schema refuses. */
  readonly kind: 'unknown' | 'invalid';
  /** For `invalid`: what was expected and what was received. Empty for `unknown`. */
  readonly message: string;
  /** For `unknown`: the closest key the schema has at that level, when one is close. */
  readonly suggestion?: string;
}

/** `checkOptions` found no problem. */
export interface OptionsAccepted<T> {
  /** Always true. */
  readonly ok: true;
  /** The parsed options: defaults filled in, keys in schema order. */
  readonly value: T;
}

/** `checkOptions` found problems. */
export interface OptionsRefused {
  /** Always false. */
  readonly ok: false;
  /** Every problem, in the order zod found them. */
  readonly problems: OptionProblem[];
}

/** The outcome of `checkOptions`: the parsed options, or every problem found. */
export type OptionsCheck<T> = OptionsAccepted<T> | OptionsRefused;

type Def = {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
};

const defOf = (schema: z.ZodType): Def => schema.def as unknown as Def;

/** The object schema reached by following `path` (through defaults, nullables, pipes and unions), if any. */
function objectAt(schema: z.ZodType, path: readonly (string | number)[]): Record<string, z.ZodType> | null {
  let node: z.ZodType | undefined = schema;
  let rest = [...path];
  for (let guard = 0; node !== undefined && guard < 64; guard++) {
    const def = defOf(node);
    if (def.type === 'object' && def.shape) {
      if (rest.length === 0) return def.shape;
      node = def.shape[String(rest[0])];
      rest = rest.slice(1);
    } else if (def.innerType) {
      node = def.innerType;
    } else if (def.type === 'pipe' && def.in) {
      node = def.in;
    } else if (def.type === 'union' && def.options) {
      node = def.options.find((option) => objectAt(option, []) !== null);
    } else {
      return null;
    }
  }
  return null;
}

/**
 * The keys of the options object at `path` inside a schema (through defaults, nullables and `false | {…}` unions),
 * or null when `path` does not lead to an object: how a flag or a sweep axis like `decoupledAttention.lambda` is
 * checked before a value is parsed.
 */
export function optionKeysAt(schema: z.ZodType, path: readonly (string | number)[]): string[] | null {
  const shape = objectAt(schema, path);
  return shape === null ? null : Object.keys(shape);
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let node = input;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    const branches = issue.errors.map((branch) => branch.map((i) => issueMessage(i)).join(', '));
    return [...new Set(branches)].join(' or ');
  }
  return issue.message;
}

/** Every problem in `issues` (zod's), with unknown keys matched against the keys the schema has there. */
function problemsOf(schema: z.ZodType, input: unknown, issues: readonly z.core.$ZodIssue[]): OptionProblem[] {
  const problems: OptionProblem[] = [];
  for (const issue of issues) {
    const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    if (issue.code === 'unrecognized_keys') {
      const known = Object.keys(objectAt(schema, path) ?? {});
      for (const key of issue.keys) {
        const suggestion = closestMatch(key, known);
        problems.push({
          path: [...path, key],
          kind: 'unknown',
          message: '',
          ...(suggestion !== undefined ? { suggestion } : {}),
        });
      }
    } else {
      problems.push({
        path,
        kind: 'invalid',
        message: `${issueMessage(issue)}; got ${describeValue(valueAt(input, path))}`,
      });
    }
  }
  return problems;
}

/**
 * Validates `input` against an options schema without throwing: the parsed options (defaults filled in, keys in
 * schema order) or every problem, unknown keys with the closest known key. Absent input means `{}`.
 */
export function checkOptions<S extends z.ZodType>(schema: S, input: unknown): OptionsCheck<z.output<S>> {
  const value = input === undefined ? {} : input;
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, problems: problemsOf(schema, value, result.error.issues) };
}

/** `label.path.to.key` for messages; `label` may be empty. */
export function optionPath(label: string, path: readonly (string | number)[]): string {
  return [label, ...path.map(String)].filter((part) => part !== '').join('.');
}

/** One problem as a sentence: `unknown option "lora.rnak" (did you mean "lora.rank"?)` or `option "x": …`. */
export function describeProblem(problem: OptionProblem, label: string): string {
  const where = optionPath(label, problem.path);
  if (problem.kind === 'unknown') {
    const near = problem.suggestion;
    const hint =
      near === undefined
        ? ''
        : ` (did you mean "${optionPath(label, [...problem.path.slice(0, -1), near])}"?)`;
    return `unknown option "${where}"${hint}`;
  }
  return `option "${where}": ${problem.message}`;
}

/**
 * Parses options through their schema: defaults filled in, every unknown key and invalid value refused in one
 * `INVALID_OPTION` error whose paths start with `label` (e.g. `lora` → `unknown option "lora.rnak" (did you mean
 * "lora.rank"?)`).
 */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, label = ''): z.output<S> {
  const checked = checkOptions(schema, input);
  if (checked.ok) return checked.value;
  throw new PeftError('INVALID_OPTION', checked.problems.map((p) => describeProblem(p, label)).join('; '));
}

/** One documented option, as `optionRows` lists it. */
export interface OptionRow {
  /** Dotted path from the options root (e.g. `decoupledAttention.lambda`). */
  readonly path: string;
  /** Short type, e.g. `integer ≥ 1`, `"carry" | "reinsert"`, `number | null`. */
  readonly type: string;
  /** The value used when the option is not given (after parsing `{}`); absent when the option has none. */
  readonly default?: JsonValue;
  /** The schema's description of the option. */
  readonly description: string;
}

interface JsonSchemaNode {
  type?: string;
  enum?: JsonValue[];
  const?: JsonValue;
  anyOf?: JsonSchemaNode[];
  items?: JsonSchemaNode;
  prefixItems?: JsonSchemaNode[];
  properties?: Record<string, JsonSchemaNode>;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  default?: JsonValue;
  description?: string;
}

const SAFE = Number.MAX_SAFE_INTEGER;

function rangeLabel(node: JsonSchemaNode): string {
  const low =
    node.exclusiveMinimum !== undefined
      ? { value: node.exclusiveMinimum, open: true }
      : node.minimum !== undefined && node.minimum > -SAFE
        ? { value: node.minimum, open: false }
        : null;
  const high =
    node.exclusiveMaximum !== undefined
      ? { value: node.exclusiveMaximum, open: true }
      : node.maximum !== undefined && node.maximum < SAFE
        ? { value: node.maximum, open: false }
        : null;
  if (low && high) return `in ${low.open ? '(' : '['}${low.value}, ${high.value}${high.open ? ')' : ']'}`;
  if (low) return `${low.open ? '>' : '≥'} ${low.value}`;
  if (high) return `${high.open ? '<' : '≤'} ${high.value}`;
  return '';
}

/** A short human type for a JSON Schema node (what `--help` and the docs tables show). */
function typeLabel(node: JsonSchemaNode): string {
  if (node.enum) return node.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (node.const !== undefined) return JSON.stringify(node.const);
  if (node.anyOf) return node.anyOf.map(typeLabel).join(' | ');
  switch (node.type) {
    case 'integer':
    case 'number': {
      const range = rangeLabel(node);
      return range ? `${node.type} ${range}` : node.type;
    }
    case 'array':
      if (node.prefixItems) return `[${node.prefixItems.map(typeLabel).join(', ')}]`;
      return node.items ? `(${typeLabel(node.items)})[]` : 'array';
    case undefined:
      return 'any';
    default:
      return node.type;
  }
}

function objectBranch(node: JsonSchemaNode): JsonSchemaNode | undefined {
  if (node.properties) return node;
  return node.anyOf?.find((branch) => branch.properties !== undefined);
}

function collectRows(node: JsonSchemaNode, defaults: unknown, prefix: string, rows: OptionRow[]): void {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    const value = (defaults as Record<string, unknown> | undefined)?.[key];
    const object = objectBranch(child);
    if (object && !child.anyOf) {
      collectRows(object, value, path, rows);
      continue;
    }
    rows.push({
      path,
      type: typeLabel(
        object ? { anyOf: child.anyOf?.map((b) => (b.properties ? { type: 'object' } : b)) } : child,
      ),
      ...(value === undefined ? {} : { default: value as JsonValue }),
      description: child.description ?? '',
    });
    if (object) collectRows(object, value, path, rows);
  }
}

function jsonSchemaOf(schema: z.ZodType): JsonSchemaNode {
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;
}

/**
 * Every option of an options schema, depth first in schema order, with its type, default and description: the
 * source of `peft … --help`, the generated docs tables and the option paths a sweep may vary. Nested objects are
 * listed field by field; a `false | {…}` option gets a row of its own followed by its fields.
 */
export function optionRows(schema: z.ZodType, prefix = ''): OptionRow[] {
  const rows: OptionRow[] = [];
  collectRows(jsonSchemaOf(schema), checkOptionsDefaults(schema), prefix, rows);
  return rows;
}

function checkOptionsDefaults(schema: z.ZodType): unknown {
  const parsed = schema.safeParse({});
  return parsed.success ? parsed.data : undefined;
}

/**
 * The keys of an options schema that lack a default or a description (dotted paths), depth first; empty when the
 * schema is fully documented. `definePlugin` and `defineMethod` refuse schemas with any.
 */
export function undocumentedOptions(schema: z.ZodType): string[] {
  const missing: string[] = [];
  const visit = (node: JsonSchemaNode, prefix: string) => {
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const path = prefix ? `${prefix}.${key}` : key;
      if (child.default === undefined || !child.description) missing.push(path);
      const object = objectBranch(child);
      if (object) visit(object, path);
    }
  };
  visit(jsonSchemaOf(schema), '');
  return missing;
}

/** The options an empty object parses to: every default, in schema order (throws when some option has none). */
export function optionDefaults<S extends z.ZodType>(schema: S): z.output<S> {
  return parseOptions(schema, {});
}

/** A deep copy of parsed options as JSON (what adapter files record). */
export function toJsonObject(value: unknown): JsonObject {
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}
