import { expect, it } from 'vitest';
import { markdownTable, runAblation } from '../src/ablation.js';

it('trains every ablation and prints a 7-row markdown table', async () => {
  const rows = await runAblation({
    backend: 'wasm',
    epochs: 2,
    trainImages: 40,
    testImages: 20,
    batchSize: 20,
  });
  const table = markdownTable(rows);
  console.log(table);
  const lines = table.split('\n');
  expect(lines[0]).toBe('| method | trainable params (w/o head) | final train loss | accuracy |');
  expect(lines.slice(2)).toHaveLength(7);
  expect(rows.map((r) => r.method)).toEqual([
    'SHIP (full)',
    'no AP',
    'no PML',
    'no DA',
    'no SSP',
    'SIP re-insert',
    'τ = 1',
  ]);
  expect(rows.every((r) => Number.isFinite(r.finalLoss) && r.top1 >= 0 && r.top1 <= 1)).toBe(true);
  const params = Object.fromEntries(rows.map((r) => [r.method, r.trainableWithoutHead]));
  expect(params['no SSP']).toBe(params['SHIP (full)']! - 10 * 32);
  expect(params['no AP']).toBeLessThan(params['SHIP (full)']!);
  expect(params['SIP re-insert']).toBe(params['SHIP (full)']);
});
