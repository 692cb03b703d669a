import { NORMALIZATION_PRESETS } from '@peftjs/data';
import {
  type PretrainedConfig,
  type ResolvedWeights,
  isWeightsReference,
  parseWeightsReference,
  progressBar,
  resolveWeights,
} from '@peftjs/hub';
import { UsageError } from './config.js';
import { DEFAULT_NORMALIZATION, type RunConfig } from './options.js';
import type { Output, Progress } from './progress.js';

type NormalizationName = RunConfig['data']['normalization'];

/** A malformed `hf:`/`timm:` reference is a usage mistake (exit 2), like any other malformed option value. */
export function checkReference(weights: string): void {
  if (!isWeightsReference(weights)) return;
  try {
    parseWeightsReference(weights);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * A weights argument: a file path as is, or a Hub reference resolved into the Hugging Face cache (download
 * progress on stderr); with `describe`, what was found goes to stdout (`peft inspect`).
 */
export async function resolveWeightsArgument(
  weights: string,
  io: { out: Output; err: Output },
  options: { describe: boolean },
): Promise<{ path: string; hub?: ResolvedWeights }> {
  if (!isWeightsReference(weights)) return { path: weights };
  checkReference(weights);
  const hub = await resolveWeights(weights, { progress: progressBar(io.err) });
  if (options.describe) io.out.write(describeResolved(hub));
  return { path: hub.path, hub };
}

/** The normalisation preset whose mean and std a pretrained config states, if one matches. */
export function presetOf(pretrained: PretrainedConfig | undefined): NormalizationName | undefined {
  const { mean, std } = pretrained ?? {};
  if (!mean || !std || mean.length !== 3 || std.length !== 3) return undefined;
  const close = (a: readonly number[], b: readonly number[]) =>
    a.every((v, i) => Math.abs(v - (b[i] ?? Number.NaN)) < 1e-6);
  const names = Object.keys(NORMALIZATION_PRESETS) as NormalizationName[];
  return names.find(
    (name) => close(mean, NORMALIZATION_PRESETS[name].mean) && close(std, NORMALIZATION_PRESETS[name].std),
  );
}

/**
 * The weights' pretrained config sets `data.normalization` unless the run chose a preset other than the default
 * (then a warning says they differ). Updates `config` in place, so everything downstream (datasets, manifest)
 * uses the preset in force.
 */
export function applyPretrainedNormalization(
  config: RunConfig,
  hub: ResolvedWeights,
  progress: Progress,
): void {
  const { pretrained } = hub;
  if (!pretrained?.mean || !pretrained.std) return;
  const preset = presetOf(pretrained);
  const configured = config.data.normalization;
  const stats = `mean [${pretrained.mean.join(', ')}], std [${pretrained.std.join(', ')}]`;
  if (!preset) {
    progress.line(
      `note: ${hub.reference} was trained with ${stats}, which no preset matches; using "${configured}"`,
    );
    return;
  }
  if (preset === configured) return;
  const isDefault = configured === DEFAULT_NORMALIZATION;
  if (isDefault) {
    config.data.normalization = preset;
    progress.line(
      `data.normalization: "${preset}", from the pretrained config of ${hub.reference} (${stats})`,
    );
  } else {
    progress.line(
      `warning: ${hub.reference} was trained with "${preset}" normalisation (${stats}); data.normalization is "${configured}"`,
    );
  }
}

function describeResolved(hub: ResolvedWeights): string {
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
  const origin =
    hub.origin === 'cache'
      ? 'from the cache, no request'
      : `from the Hub, ${mb(hub.downloadedBytes)} downloaded`;
  const lines = [
    `reference: ${hub.reference}`,
    `resolved: ${hub.pinned} (${origin})`,
    `file: ${hub.path} (${mb(hub.size)})`,
  ];
  const p = hub.pretrained;
  if (p) {
    const facts = [
      p.architecture && `architecture ${p.architecture}`,
      p.tag && `tag ${p.tag}`,
      p.inputSize && `input size [${p.inputSize.join(', ')}]`,
      p.mean && `mean [${p.mean.join(', ')}]`,
      p.std && `std [${p.std.join(', ')}]`,
      p.mean && `normalisation preset ${presetOf(p) ?? 'none matches'}`,
      p.numClasses !== undefined && `${p.numClasses} classes`,
      p.heads !== undefined && `${p.heads} heads`,
      p.layerNormEps !== undefined && `LayerNorm eps ${p.layerNormEps}`,
      p.interpolation && `interpolation ${p.interpolation}`,
      p.cropPct !== undefined && `crop ${p.cropPct}`,
    ].filter(Boolean);
    lines.push(`config.json (${p.library}): ${facts.join(', ')}`);
  } else {
    lines.push(`config.json: ${hub.configPath ? 'not a timm or transformers config' : 'none'}`);
  }
  return `${lines.join('\n')}\n`;
}
