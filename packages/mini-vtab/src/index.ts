export {
  DEFAULT_SOURCES,
  MINI_VTAB_TASKS,
  type GenerateOptions,
  type SplitCounts,
  type TaskInfo,
  VTAB_COUNTS,
  generateTask,
} from './generate.js';
export { PROCEDURAL_TASKS, type ProceduralTask } from './tasks.js';
export { Canvas, type Rgb } from './raster.js';
