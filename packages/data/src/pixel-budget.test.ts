import { describe, expect, it } from 'vitest';
import { PixelBudget } from './pixel-budget.js';

/** Runs jobs of the given pixel counts through one budget, recording the most pixels held at once. */
async function peakHeld(capacity: number, jobs: number[]): Promise<{ peak: number; order: number[] }> {
  const budget = new PixelBudget(capacity);
  let held = 0;
  let peak = 0;
  const order: number[] = [];
  await Promise.all(
    jobs.map((pixels, i) =>
      budget.run(pixels, async () => {
        held += Math.min(pixels, capacity);
        peak = Math.max(peak, held);
        order.push(i);
        await new Promise((r) => setTimeout(r, 5));
        held -= Math.min(pixels, capacity);
      }),
    ),
  );
  return { peak, order };
}

describe('PixelBudget', () => {
  it('never holds more than its capacity, and runs small jobs side by side', async () => {
    expect((await peakHeld(100, [40, 40, 40, 40])).peak).toBe(80);
    expect((await peakHeld(100, [10, 10, 10, 10])).peak).toBe(40);
  });

  it('runs a job above the capacity alone, in arrival order', async () => {
    const { peak, order } = await peakHeld(100, [30, 500, 30]);
    expect(peak).toBe(100);
    expect(order).toEqual([0, 1, 2]);
  });

  it('releases its share when the job fails', async () => {
    const budget = new PixelBudget(10);
    await expect(budget.run(10, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await budget.run(10, async () => 'ran')).toBe('ran');
  });
});
