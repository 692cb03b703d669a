import { describe, expect, it, vi } from 'vitest';
import { type Output, Progress } from './progress.js';

/** A fake terminal: every write is one frame, as a TTY would receive it. */
function fakeTty(): Output & { frames: string[] } {
  const frames: string[] = [];
  return { isTTY: true, frames, write: (text) => frames.push(text) };
}

describe('Progress on a terminal', () => {
  it('fills the bar step by step within each epoch (a snapshot of the frames)', () => {
    const tty = fakeTty();
    const progress = new Progress(tty);
    const parts = { ce: 1 };
    for (const epoch of [0, 1]) {
      progress.trainEvent({ type: 'epoch-start', epoch, lr: 0.001, steps: 3, elapsedMs: 0 }, 2);
      for (let i = 0; i < 3; i++) {
        const step = epoch * 3 + i;
        progress.trainEvent(
          { type: 'step', epoch, step, lr: 0.001, loss: 2 - step / 10, parts, elapsedMs: 10 * step },
          2,
        );
      }
      progress.trainEvent(
        { type: 'epoch-end', epoch, lr: 0.001, loss: 1.5, parts, steps: 3, elapsedMs: 1234 * (epoch + 1) },
        2,
      );
    }
    expect(tty.frames).toEqual([
      '\repoch 1/2 [########................] 1/3 loss 2.0000 lr 1.00e-3',
      '\repoch 1/2 [################........] 2/3 loss 1.9000 lr 1.00e-3',
      '\repoch 1/2 [########################] 3/3 loss 1.8000 lr 1.00e-3',
      '\n',
      'epoch 1/2  loss 1.5000  lr 1.00e-3  1.2 s\n',
      '\repoch 2/2 [########................] 1/3 loss 1.7000 lr 1.00e-3',
      '\repoch 2/2 [################........] 2/3 loss 1.6000 lr 1.00e-3',
      '\repoch 2/2 [########################] 3/3 loss 1.5000 lr 1.00e-3',
      '\n',
      'epoch 2/2  loss 1.5000  lr 1.00e-3  2.5 s\n',
    ]);
  });

  it('draws no bar when the output is not a terminal, only the lines', () => {
    const log: string[] = [];
    const progress = new Progress({ isTTY: false, write: (text) => log.push(text) });
    progress.trainEvent({ type: 'epoch-start', epoch: 0, lr: 0.1, steps: 1, elapsedMs: 0 }, 1);
    progress.trainEvent({ type: 'step', epoch: 0, step: 0, lr: 0.1, loss: 1, parts: {}, elapsedMs: 1 }, 1);
    progress.trainEvent(
      { type: 'epoch-end', epoch: 0, lr: 0.1, loss: 1, parts: {}, steps: 1, elapsedMs: 50 },
      1,
    );
    expect(log).toEqual(['epoch 1/1  loss 1.0000  lr 1.00e-1  0.1 s\n']);
  });
});

describe('Progress phases', () => {
  it('on a terminal: a bar the ticks fill, replaced by the result and the elapsed time', () => {
    const tty = fakeTty();
    const phase = new Progress(tty).phase('checking train800');
    phase.tick(1, 2);
    phase.tick(2, 2);
    phase.end('ok');
    expect(tty.frames.slice(0, 3)).toEqual([
      '\rchecking train800 [........................] 0/0 …',
      // Each frame is padded to the previous one's length, so no character of it is left behind.
      '\rchecking train800 [############............] 1/2  ',
      '\rchecking train800 [########################] 2/2 ',
    ]);
    expect(tty.frames.slice(3)).toEqual([
      '\n',
      expect.stringMatching(/^checking train800: ok \(\d+\.\d s\)\n$/),
    ]);
  });

  it('in a log: the end line with the time taken, announced first when the phase runs over a second', () => {
    vi.useFakeTimers();
    try {
      const log: string[] = [];
      const progress = new Progress({ isTTY: false, write: (text) => log.push(text) });
      const quick = progress.phase('loading weights');
      quick.end('ok');
      expect(log).toEqual([expect.stringMatching(/^loading weights: ok \(\d+\.\d s\)\n$/)]);
      log.length = 0;
      const slow = progress.phase('evaluating test');
      slow.tick(5, 10);
      vi.advanceTimersByTime(1500);
      slow.end();
      expect(log).toEqual([
        'evaluating test …\n',
        expect.stringMatching(/^evaluating test: done \(1\.5 s\)\n$/),
      ]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('timed: ends with the result, or stops silently when the work throws', async () => {
    vi.useFakeTimers();
    try {
      const log: string[] = [];
      const progress = new Progress({ isTTY: false, write: (text) => log.push(text) });
      expect(
        await progress.timed(
          'adding',
          async () => 2 + 2,
          (sum) => `${sum}`,
        ),
      ).toBe(4);
      expect(log).toEqual([expect.stringMatching(/^adding: 4 \(\d+\.\d s\)\n$/)]);
      log.length = 0;
      await expect(
        progress.timed('loading', async () => {
          throw new Error('no such file');
        }),
      ).rejects.toThrow('no such file');
      vi.advanceTimersByTime(5000);
      expect(log).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });
});
