import { expect, it } from 'vitest';
import { runQuickstart } from '../src/quickstart.js';

it('runs the quickstart path at tiny size', async () => {
  const lines: string[] = [];
  const result = await runQuickstart({
    backend: 'wasm',
    trainImages: 40,
    testImages: 20,
    epochs: 3,
    batchSize: 20,
    log: (line) => lines.push(line),
  });
  expect(result.backend).toBe('wasm');
  expect(result.losses).toHaveLength(3);
  expect(result.losses.every(Number.isFinite)).toBe(true);
  expect(result.losses.at(-1)!).toBeLessThan(result.losses[0]!);
  expect(result.starts[0]).toBe(0);
  expect(result.report.head).toBe(32 * 10 + 10);
  expect(result.report.trainableWithoutHead).toBeGreaterThan(0);
  expect(result.top1).toBeGreaterThanOrEqual(0);
  expect(lines.some((l) => l.startsWith('test top-1:'))).toBe(true);
  expect(lines.some((l) => l.startsWith('parameters:'))).toBe(true);
});
