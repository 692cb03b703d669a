import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type JsonValue, optionDefaults } from '@peftjs/core';
import { describe, expect, it } from 'vitest';
import { optionsMarkdown } from './docs.js';
import { formatDefault, methodOptionRows, runOptionRows } from './help.js';
import { EXIT, runCli } from './main.js';
import { BUILTIN_METHODS } from './methods.js';
import { RUN_CONFIG } from './options.js';

const here = dirname(fileURLToPath(import.meta.url));
const committed = () => readFileSync(join(here, '..', '..', '..', 'docs', 'guides', 'methods.md'), 'utf8');

async function help(...argv: string[]): Promise<string> {
  let text = '';
  const out = {
    isTTY: false,
    write: (t: string) => {
      text += t;
    },
  };
  expect(await runCli(['train', '--help', ...argv], { out, err: out })).toBe(EXIT.ok);
  return text;
}

/** The value at a dotted path of a parsed options object. */
function at(value: unknown, path: string): JsonValue | undefined {
  return path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown>)?.[key], value) as
    | JsonValue
    | undefined;
}

describe('one definition per default', () => {
  it('docs/guides/methods.md is what the schemas generate (run `pnpm docs:options` after changing one)', () => {
    expect(committed()).toBe(optionsMarkdown());
  });

  it('--help, the docs table and the schema agree on every default of the run config and every method', async () => {
    const docs = committed();
    const runDefaults = optionDefaults(RUN_CONFIG);
    for (const method of BUILTIN_METHODS) {
      const text = await help(`--method.name=${method.name}`);
      const methodDefaults = { method: { options: optionDefaults(method.options) } };
      for (const row of [...runOptionRows(), ...methodOptionRows(method)]) {
        const schemaDefault = at(
          row.path.startsWith('method.options.') ? methodDefaults : runDefaults,
          row.path,
        );
        expect(row.default, row.path).toEqual(schemaDefault);
        const shown = formatDefault(schemaDefault);
        const helpLine = text.split('\n').find((line) => line.trimStart().startsWith(`--${row.path} `));
        expect(helpLine, `${method.name}: --help line of ${row.path}`).toBeDefined();
        if (schemaDefault !== undefined)
          expect(helpLine).toMatch(new RegExp(` \\(default ${escapeRegExp(shown)}\\)$`));
        const section = row.path.startsWith('method.options.')
          ? sectionOf(docs, `### \`${method.name}\``)
          : docs;
        const docLine = section.split('\n').find((line) => line.startsWith(`| \`${row.path}\` |`));
        expect(docLine, `docs row of ${row.path}`).toBeDefined();
        expect(docLine).toContain(`| \`${shown.replace(/\|/g, '\\|')}\` |`);
      }
    }
  });
});

/** The part of the docs from `heading` to the next heading of its level. */
function sectionOf(docs: string, heading: string): string {
  const start = docs.indexOf(`${heading}\n`);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const next = docs.indexOf('\n### ', start + heading.length);
  return docs.slice(start, next < 0 ? undefined : next);
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('the command line knows no method by name', () => {
  it('names built-in methods only in its registry (methods.ts) and in tests', () => {
    const names = BUILTIN_METHODS.map((m) => m.name);
    const offending: string[] = [];
    for (const file of readdirSync(here).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
      if (file === 'methods.ts') continue;
      const code = readFileSync(join(here, file), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/^\s*\/\/.*$/gm, '');
      const literals = [...code.matchAll(/'([^'\n]*)'|"([^"\n]*)"/g)].map((m) => m[1] ?? m[2] ?? '');
      for (const name of names) {
        // "adapter" also names the run folder's adapter/ directory: only a comparison or lookup counts for it.
        const used =
          name === 'adapter'
            ? /(===|!==|case)\s*'adapter'|\[\s*'adapter'\s*\]/.test(code)
            : literals.some((l) => l === name || l.startsWith(`${name}-`) || l.startsWith(`${name}.`));
        if (used) offending.push(`${file}: ${name}`);
      }
    }
    expect(offending).toEqual([]);
  });
});
