import type { TrainEvent } from '@peftjs/train';

/**
 * Training images per second from `train()`'s events, the same way in the page and in Node: the time between
 * consecutive steps of an epoch, so each epoch's first step (batch set-up) and the validation pass after it are
 * left out.
 */
export function throughputMeter(batchSize: number) {
  let last: number | null = null;
  let images = 0;
  let ms = 0;
  return {
    /** Feeds one event; returns the images/s so far (null before two steps of one epoch). */
    onEvent(event: TrainEvent): number | null {
      if (event.type === 'epoch-start') last = null;
      if (event.type !== 'step') return null;
      if (last !== null) {
        images += batchSize;
        ms += event.elapsedMs - last;
      }
      last = event.elapsedMs;
      return ms > 0 ? (images / ms) * 1000 : null;
    },
    /** Images/s over the whole run. */
    imagesPerSecond: () => (ms > 0 ? (images / ms) * 1000 : 0),
  };
}
