export { groupLayers, type GroupLayersOptions } from './grouping.js';
export { HIERARCHY_TOKENS, type HierarchyToken, layerFeatures } from './features.js';
export { AffinityAccumulator } from './affinity.js';
export { kmeans, type KMeansOptions, type KMeansResult } from './kmeans.js';
export { HEATMAP_BOUNDARY_COLOR, affinityHeatmapPng, heatmapColor, type HeatmapOptions } from './heatmap.js';
export { affinityHeatmapSvg, type HeatmapSvgOptions } from './heatmap-svg.js';
export {
  HIERARCHY_OPTIONS,
  HIERARCHY_PLUGIN,
  HIERARCHY_PLUGIN_VERSION,
  HIERARCHY_SHARED_KEYS,
  type AnalyseLayersOptions,
  type HierarchyOptions,
  type ResolvedHierarchyOptions,
  analyseLayers,
  hierarchyPlugin,
} from './plugin.js';
