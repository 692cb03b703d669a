/**
 * The mini-VTAB tasks bundled with the page (generated at build time by scripts/assets.ts, never committed) and
 * the layout of their files. Pure data: imported by the page, the worker, the assets script and the test.
 */

/** Generator seed and split sizes of the bundled tasks (train / epoch-selection / test). */
export const TASK_SEED = 0;
/** Split sizes passed to `generateTask` (`train800` is the training split, `val200` the selection split). */
export const TASK_COUNTS = { train800: 400, val200: 100, test: 200 } as const;
/** Tiles per row in a split's sprite sheet. */
export const SHEET_COLUMNS = 20;

const orientationNames = Array.from(
  { length: 8 },
  (_, i) => `${(i * 22.5).toFixed(1)}–${((i + 1) * 22.5).toFixed(1)}°`,
);
const positionNames = Array.from(
  { length: 16 },
  (_, i) => `row ${Math.floor(i / 4) + 1}, column ${(i % 4) + 1}`,
);

/** The tasks the page offers, with a readable name for each class. */
export const BUNDLED_TASKS: readonly { name: string; classNames: readonly string[] }[] = [
  { name: 'orientation', classNames: orientationNames },
  { name: 'position', classNames: positionNames },
  { name: 'texture', classNames: ['stripes', 'checkerboard', 'dots', 'waves', 'grid', 'blobs'] },
];

/** `public/tasks/<task>/task.json`: what the sheets hold. */
export interface TaskManifest {
  /** mini-VTAB task name. */
  name: string;
  /** What the images show and what the label means. */
  description: string;
  /** Number of classes. */
  numClasses: number;
  /** A name for each class. */
  classNames: string[];
  /** Tile side in pixels. */
  size: number;
  /** Tiles per sheet row. */
  columns: number;
  /** `generateTask` seed. */
  seed: number;
  /** Labels of each split's tiles, in sheet order (the order of the task's list files). */
  labels: { train: number[]; val: number[]; test: number[] };
}
