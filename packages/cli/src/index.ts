/**
 * `@peftjs/cli`: the `peft` command (`runCli`), and the run config it resolves — the schema, the resolver that
 * merges a config file, flags and a method preset and validates them against the method's own schema, and the
 * registry of built-in methods — for tools that run `peft` configs (e.g. sweeps). A resolved run says where each
 * value came from (`Provenance`) and which backbone recipe it was resolved with (`AppliedRecipe`).
 */
export { EXIT, runCli } from './main.js';
export { type AppliedRecipe, type ConfigSources, type ResolvedRun, resolveRunConfig } from './config.js';
export { type ConfigSource, Provenance, type SourceKind } from './provenance.js';
export { UsageError } from './errors.js';
export { RUN_CONFIG, type RunConfig } from './options.js';
export { BUILTIN_METHODS, DEFAULT_METHOD, adapterFactories, resolveMethod } from './methods.js';
export { type Output, streamOutput } from './progress.js';
export { type SeriesPoint, lineChart, renderPng } from './plots.js';
