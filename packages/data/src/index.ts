export type { DataProblem, LabeledSample, SampleSource, Split } from './split.js';
export { formatProblem } from './split.js';
export {
  type ReadListOptions,
  VTAB_SPLITS,
  VTAB_TASKS,
  type VtabGroup,
  type VtabSplitName,
  type VtabTask,
  type VtabTaskInfo,
  type VtabTaskName,
  isVtabTask,
  readListFile,
  readVtabTask,
} from './lists.js';
export {
  IMAGE_EXTENSIONS,
  type ImageFolderSplit,
  type ReadImageFolderOptions,
  readImageFolder,
} from './image-folder.js';
export { DEFAULT_INPUT_LIMITS, type InputLimits } from './limits.js';
export { MAX_INFERRED_CLASSES, inferClassCount } from './classes.js';
export {
  type IdxArray,
  type IdxData,
  type IdxDataset,
  type IdxDatasetOptions,
  type ReadIdxOptions,
  idxDataset,
  parseIdx,
  parseIdxDataset,
  readIdx,
} from './idx.js';
export {
  type DecodeOptions,
  type ImageDecoder,
  decodeImage,
  readRawImage,
  resizeCubic,
  toChannels,
} from './decode.js';
export {
  NORMALIZATION_PRESETS,
  type Normalization,
  type NormalizationName,
  channelStats,
  isNormalizationName,
  normalize,
} from './normalize.js';
export {
  type BatchOptions,
  type CacheStats,
  type DatasetBatch,
  type DatasetDescription,
  ImageDataset,
  type ImageDatasetOptions,
  asPrepareData,
} from './dataset.js';
export {
  type CheckOptions,
  type CheckResult,
  assertSplitValid,
  checkIdxDataset,
  checkSplit,
  dataProblemsError,
  listProblems,
} from './check.js';
export type { RawImage } from './raw-image.js';
