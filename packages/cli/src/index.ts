export { EXIT, type ParsedArgs, parseArgs, runCli } from './main.js';
export { UsageError, didYouMean, levenshtein, resolveConfig } from './config.js';
export {
  METHODS,
  OPTIONS,
  type MethodName,
  type OptionSpec,
  type RunConfig,
  runConfigSchema,
} from './options.js';
export { ALL_PLUGIN_FACTORIES, methodPlugins } from './methods.js';
export { type Output, Progress, streamOutput } from './progress.js';
export { type SeriesPoint, lineChart, renderPng } from './plots.js';
