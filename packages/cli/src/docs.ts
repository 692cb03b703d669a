import type { MethodDefinition, OptionRow } from '@peftjs/core';
import { formatDefault, methodOptionRows, runOptionRows } from './help.js';
import { BUILTIN_METHODS } from './methods.js';

const cell = (text: string) => text.replace(/\|/g, '\\|');

function table(rows: readonly OptionRow[]): string[] {
  return [
    '| option | type | default | description |',
    '|---|---|---|---|',
    ...rows.map(
      (row) =>
        `| \`${row.path}\` | ${cell(row.type)} | ${cell(`\`${formatDefault(row.default)}\``)} | ${cell(row.description)} |`,
    ),
  ];
}

function methodSection(method: MethodDefinition): string[] {
  const presets = Object.keys(method.presets ?? {});
  const capabilities = [
    method.prepare ? `data pass outputs (\`peft prepare\`): ${method.prepare.summary}` : '',
    method.report ? 'report lines, results fields and figures' : '',
    method.fit
      ? `fitted without training (\`peft train\` calls \`fit\` instead of \`train()\`): ${method.fit.summary}`
      : '',
    method.dataLimits
      ? 'options bounded by the data: capped (defaults) or refused (set by you) before images are decoded'
      : '',
    presets.length > 0
      ? `${presets.length} presets (\`--preset\`): ${presets.map((p) => `\`${p}\``).join(', ')}`
      : '',
  ].filter(Boolean);
  return [
    `### \`${method.name}\``,
    '',
    `${method.description[0]?.toUpperCase()}${method.description.slice(1)}.`,
    ...(capabilities.length > 0 ? ['', ...capabilities.map((c) => `- ${c}`)] : []),
    '',
    ...table(methodOptionRows(method)),
    '',
  ];
}

/**
 * docs/guides/methods.md: every option of `peft` run configs and of each built-in method, with its type, default
 * and description, generated from the schemas (`pnpm docs:options`; a test keeps the committed file equal).
 */
export function optionsMarkdown(): string {
  return [
    '# Methods and options',
    '',
    '<!-- Generated from the option schemas by `pnpm docs:options` (scripts/docs-options.ts); do not edit. -->',
    '',
    'Every default below is defined once, in the schema of the package that owns the option, and read from there by',
    'the library functions (`lora(options)`, `ship(options)`, `train(model, data, options)`), by `peft … --help` and',
    'by this page. Unknown keys are refused everywhere with a did-you-mean. In a run config, method options go under',
    '`method.options`; on the command line `--method.options.KEY=value` (or `--method.options=\'{"KEY": value}\'`)',
    "merges into the config file's method options.",
    '',
    '## Run config (`peft train`, `peft prepare`, `peft eval`, …)',
    '',
    ...table(runOptionRows()),
    '',
    '## Methods',
    '',
    'A third-party method is a module exporting a method definition (`definePluginMethod` / `defineMethod` from',
    '`@peftjs/core`) as `method` or as its default export; name its path or package in `method.name`',
    '([example](../../examples/custom-prompt-strategy)).',
    '',
    ...BUILTIN_METHODS.flatMap(methodSection),
  ].join('\n');
}
