import { z } from 'zod';
import { SWEEP_FILE } from './spec.js';

/**
 * The sweep file's reference table for docs/guides/sweeps.md, generated from `SWEEP_FILE` (through its JSON
 * schema), so the guide lists exactly the keys the parser accepts, with their defaults and descriptions.
 */

interface Schema {
  type?: string;
  const?: unknown;
  description?: string;
  default?: unknown;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: Schema | boolean;
  propertyNames?: Schema;
  items?: Schema | boolean;
  prefixItems?: Schema[];
  oneOf?: Schema[];
  $ref?: string;
  pattern?: string;
}

interface Row {
  readonly key: string;
  readonly type: string;
  readonly value: string;
  readonly description: string;
}

function typeOf(schema: Schema): string {
  if (schema.$ref) return 'any JSON value';
  if (schema.const !== undefined) return `\`${JSON.stringify(schema.const)}\``;
  if (schema.prefixItems) return `[${schema.prefixItems.map(typeOf).join(', ')}]`;
  if (schema.type === 'array') {
    return `list of ${typeof schema.items === 'object' ? typeOf(schema.items) : 'values'}`;
  }
  if (schema.type === 'object' && typeof schema.additionalProperties === 'object') {
    const keys = schema.propertyNames?.pattern ? 'option path' : 'name';
    if (schema.additionalProperties.properties) return `${keys} → row`;
    if (schema.additionalProperties.$ref) return 'config object';
    return `${keys} → ${typeOf(schema.additionalProperties)}`;
  }
  if (schema.oneOf) return 'one of the protocols below';
  return schema.type ?? 'any';
}

function walk(schema: Schema, key: string, required: boolean, rows: Row[]): void {
  if (schema.oneOf) {
    // A discriminated union on `name`: one row for the name, then each variant's own keys, marked with it.
    rows.push({
      key,
      type: 'object',
      value: defaultCell(schema, required),
      description: schema.description ?? '',
    });
    const names = schema.oneOf.map((a) => a.properties?.name ?? {});
    rows.push({
      key: `${key}.name`,
      type: names.map(typeOf).join(' or '),
      value: 'required',
      description: names.map((n) => `${typeOf(n)}: ${n.description ?? ''}`).join('; '),
    });
    for (const alternative of schema.oneOf) {
      const variant = String(alternative.properties?.name?.const);
      for (const [child, sub] of Object.entries(alternative.properties ?? {})) {
        if (child === 'name') continue;
        const own: Row[] = [];
        walk(sub, `${key}.${child}`, alternative.required?.includes(child) ?? false, own);
        rows.push(...own.map((r) => ({ ...r, description: `(${variant}) ${r.description}` })));
      }
    }
    return;
  }
  if (key !== '') {
    rows.push({
      key,
      type: typeOf(schema),
      value: defaultCell(schema, required),
      description: schema.description ?? '',
    });
  }
  const row = typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined;
  const children = schema.properties ?? row?.properties;
  const prefix = row?.properties ? `${key}.<row>` : key;
  for (const [child, sub] of Object.entries(children ?? {})) {
    const owner = schema.properties ? schema : (row as Schema);
    walk(sub, prefix === '' ? child : `${prefix}.${child}`, owner.required?.includes(child) ?? false, rows);
  }
}

function defaultCell(schema: Schema, required: boolean): string {
  if (schema.default !== undefined) return `\`${JSON.stringify(schema.default)}\``;
  return required ? 'required' : '—';
}

/** The markdown table of every key of a sweep file. */
export function sweepFileTable(): string {
  const schema = z.toJSONSchema(SWEEP_FILE, { io: 'input', unrepresentable: 'any' }) as Schema;
  const rows: Row[] = [];
  walk(schema, '', true, rows);
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  return [
    '| key | type | default | description |',
    '|---|---|---|---|',
    ...rows.map((r) => `| \`${r.key}\` | ${cell(r.type)} | ${cell(r.value)} | ${cell(r.description)} |`),
  ].join('\n');
}

const START =
  "<!-- sweep-file: generated from the sweep file's schema by `pnpm docs:options`; do not edit -->";
const END = '<!-- /sweep-file -->';

/** `markdown` with the table between its sweep-file markers replaced by `sweepFileTable()` (markers required). */
export function withSweepFileTable(markdown: string): string {
  const start = markdown.indexOf(START);
  const end = markdown.indexOf(END);
  if (start < 0 || end < start) throw new Error(`no "${START}" … "${END}" section to fill`);
  return `${markdown.slice(0, start + START.length)}\n${sweepFileTable()}\n${markdown.slice(end)}`;
}
