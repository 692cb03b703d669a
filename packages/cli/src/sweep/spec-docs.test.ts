import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SWEEP_FILE } from './spec.js';
import { sweepFileTable, withSweepFileTable } from './spec-docs.js';

const guide = join(dirname(fileURLToPath(import.meta.url)), '../../../../docs/guides/sweeps.md');

describe('the sweep file reference', () => {
  it('docs/guides/sweeps.md holds the table the schema generates (run `pnpm docs:options` after changing it)', () => {
    const committed = readFileSync(guide, 'utf8');
    expect(committed).toBe(withSweepFileTable(committed));
  });

  it('lists every key the schema accepts, with defaults, and nothing else', () => {
    const table = sweepFileTable();
    for (const key of Object.keys(SWEEP_FILE.shape)) expect(table).toContain(`| \`${key}\` |`);
    expect(table).toContain('| `methods.<row>.grid` | option path → list of any JSON value | — |');
    expect(table).toContain(
      '| `protocol.selectEpochs` | boolean | `true` | (vtab) also choose the epoch count',
    );
    expect(table).toMatch(/\| `protocol.name` \| `"none"` or `"vtab"` \| required \|/);
    expect(() => withSweepFileTable('# no markers')).toThrow(/no "<!-- sweep-file/);
  });
});
