import type {
  DataFacts,
  JsonObject,
  MethodFile,
  MethodReport,
  OptionLimit,
  PeftModel,
  VitConfig,
} from '@peftjs/core';
import { serializeSafetensors } from '@peftjs/core/safetensors';
import { affinityHeatmapSvg } from '@peftjs/hierarchy';
import type { ResolvedShipOptions } from './options.js';

/** The hierarchy plugin's artifacts (affinity, starts …), when it ran. */
function hierarchyArtifacts(model: PeftModel, o: ResolvedShipOptions) {
  const saved = model.artifacts()[o.hierarchy.name];
  if (!saved || !Array.isArray(saved.affinity) || !Array.isArray(saved.starts)) return null;
  return {
    ...saved,
    affinity: saved.affinity as number[][],
    starts: saved.starts as number[],
  } as JsonObject & {
    affinity: number[][];
    starts: number[];
  };
}

const heatmapTitle = (threshold: unknown) => `Layer affinity (τ = ${String(threshold)})`;

/** What the prompts use: the grouped or fixed starts. */
function promptStarts(model: PeftModel, o: ResolvedShipOptions): number[] | null {
  const starts = model.artifacts()[o.prompts.name]?.starts;
  return Array.isArray(starts) ? (starts as number[]) : o.starts;
}

/**
 * `peft prepare` for SHIP: the hierarchy (hierarchy.json + affinity.png) and the prototype bank the prompts
 * buffer (prototypes.safetensors) — read from the prepared model, so they are exactly what training uses.
 */
export async function shipOutputs(model: PeftModel, o: ResolvedShipOptions): Promise<MethodFile[]> {
  const files: MethodFile[] = [];
  const hierarchy = hierarchyArtifacts(model, o);
  if (hierarchy) {
    const { affinity, starts, threshold, endLayer, token, numImages } = hierarchy;
    files.push({
      name: 'hierarchy.json',
      data: `${JSON.stringify({ threshold, endLayer, token, numImages, starts, affinity }, null, 2)}\n`,
      description: `hierarchy starts ${starts.join(', ')} (τ = ${String(threshold)})`,
    });
    files.push({
      name: 'affinity.png',
      data: { svg: affinityHeatmapSvg(affinity, starts, { title: heatmapTitle(threshold) }) },
      description: 'layer affinity heatmap with hierarchy boundaries',
    });
  }
  const bankName = `${o.prompts.prefix}.prototypes`;
  if (o.prompts.ap && model.registry.has(bankName)) {
    const bank = model.registry.get(bankName);
    const [k, dim] = bank.shape as [number, number];
    const images = hierarchy?.prototypeImages;
    files.push({
      name: 'prototypes.safetensors',
      data: serializeSafetensors(
        [{ name: 'prototypes', shape: [k, dim], data: bank.dataSync() as Float32Array }],
        {
          ...(images !== undefined ? { images: String(images) } : {}),
          source: `${bankName} after prepare`,
        },
      ),
      description: `${k} attribute prototypes of width ${dim}`,
    });
  }
  return files;
}

/**
 * Artifacts standing in for SHIP's data pass in speed benchmarks: three hierarchies (or the fixed starts) and a
 * prototype bank of the configured size.
 */
export function shipPlaceholder(config: VitConfig, o: ResolvedShipOptions): Record<string, JsonObject> {
  const depth = config.depth;
  const starts = o.starts ?? [...new Set([0, Math.floor(depth / 2), depth - 1])].sort((a, b) => a - b);
  return { [o.prompts.name]: { starts, prototypeCount: o.hierarchy.prototypes } };
}

/** Report lines, results fields and the affinity heatmap of a trained SHIP model. */
export async function shipReport(model: PeftModel, o: ResolvedShipOptions): Promise<MethodReport> {
  const hierarchy = hierarchyArtifacts(model, o);
  const starts = promptStarts(model, o);
  const lines: string[] = [];
  const fields: JsonObject = { starts };
  if (hierarchy) {
    lines.push(
      `hierarchy starts ${hierarchy.starts.join(', ')} (τ = ${String(hierarchy.threshold)}, ` +
        `${String(hierarchy.token)} features of ${String(hierarchy.numImages)} images)`,
    );
    fields.threshold = hierarchy.threshold ?? null;
  } else if (starts) {
    lines.push(`hierarchy starts ${starts.join(', ')} (fixed by option "starts")`);
  }
  const figures = hierarchy
    ? [
        {
          file: 'affinity.png',
          caption: `layer affinity; hierarchy starts ${hierarchy.starts.join(', ')}`,
          data: {
            svg: affinityHeatmapSvg(hierarchy.affinity, hierarchy.starts, {
              title: heatmapTitle(hierarchy.threshold),
            }),
          },
        },
      ]
    : [];
  return { lines, fields, figures };
}

/**
 * The data bounds SHIP's options: k-means needs at least one image per prototype, among the images the hierarchy
 * pass keeps (the smallest split it prepares on, at most `hierarchy.maxImages`).
 */
export function shipDataLimits(o: ResolvedShipOptions, data: DataFacts): OptionLimit[] {
  if (o.starts !== null && !o.prompts.ap) return [];
  const images = Math.min(data.trainImages, o.hierarchy.maxImages);
  return [
    {
      path: 'hierarchy.prototypes',
      value: o.hierarchy.prototypes,
      max: images,
      reason:
        images < data.trainImages
          ? `k-means clusters at most hierarchy.maxImages = ${images} images`
          : `k-means needs an image per prototype and the smallest training split has ${images}`,
    },
  ];
}
