import { PeftError, type Seed, type VitConfig } from '@peftjs/core';
import { type HostTensor, parseSafetensors } from '@peftjs/core/safetensors';
import { validateVitConfig } from '@peftjs/core/backbone';
import { readRegularFile } from '@peftjs/core/internal';
import { assertFiniteTensors } from './io/finite.js';
import type { HubOptions, ResolvedWeights } from '@peftjs/hub';
import { isWeightsReference } from '@peftjs/hub/reference';
import { type WeightLayout, toTimmStateDict } from './io/name-maps.js';
import { readNpz } from './io/npz.js';
import { checkPretrainedGeometry, pretrainedHints } from './pretrained-hints.js';
import { TIMM_DEFAULTS } from './presets.js';
import { VisionTransformer } from './vit.js';

/** Options of `loadVit` and `vitFromTensors`. */
export interface LoadVitOptions {
  /** The full config; when absent it is inferred from tensor shapes (see `inferVitConfig`). */
  config?: VitConfig;
  /** Heads, when inferring (shapes cannot tell; default dim/64 as every timm preset, or the file's metadata). */
  heads?: number;
  /** Classes of a fresh head when the file has none (e.g. `orig_in21k`), or to replace the file's head. */
  numClasses?: number;
  /** LayerNorm eps when inferring (default 1e-6; HF checkpoints default to 1e-12). */
  layerNormEps?: number;
  /** Stochastic depth rate for training (checkpoints do not record it). Default 0. */
  dropPathRate?: number;
  /** Force the naming scheme instead of detecting it. */
  layout?: WeightLayout;
  /** Seed of a freshly initialised head. */
  seed?: Seed;
  /** `.npz` only: most bytes its arrays may declare in total (default `DEFAULT_MAX_NPZ_BYTES`, 2 GiB). */
  maxNpzBytes?: number;
  /**
   * For `hf:`/`timm:` references: endpoint, cache folder, token, offline mode, progress (see `@peftjs/hub`;
   * each defaults to the `HF_*` environment variable Python's `huggingface_hub` reads).
   */
  hub?: HubOptions;
}

/** A ViT loaded from a checkpoint, with what was learned about the file. */
export interface LoadedVit {
  /** The model, weights loaded (the caller owns it: `dispose()` when done). */
  readonly model: VisionTransformer;
  /** The naming family detected in (or forced on) the file. */
  readonly layout: WeightLayout;
  /** Tensors present in the file that a ViT classifier does not use (pre-logits, pooler), reported not loaded. */
  readonly dropped: readonly string[];
  /**
   * The file's string metadata: safetensors `__metadata__`, `options.metadata` for `vitFromTensors`, `{}`
   * for npz.
   */
  readonly metadata: Readonly<Record<string, string>>;
  /**
   * For a Hub reference: the commit and cache path it resolved to (`pinned` reloads exactly these bytes) and the
   * repository's pretrained config (input size, mean/std, classes).
   */
  readonly hub?: ResolvedWeights;
}

function numberFrom(record: Record<string, unknown>, ...keys: string[]): number | undefined {
  for (const key of keys) {
    const value = record[key];
    if (typeof value === 'number' && Number.isFinite(value)) return value;
  }
  return undefined;
}

/** Reads `heads`/`num_heads`/`num_attention_heads` and eps from a file's `config` metadata, when present. */
function hintsFromMetadata(metadata: Record<string, string>): { heads?: number; layerNormEps?: number } {
  const raw = metadata.config;
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    // Metadata written by other tools may hold anything; an unparsable config is simply no hint.
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null) return {};
  const record = parsed as Record<string, unknown>;
  const heads = numberFrom(record, 'heads', 'num_heads', 'num_attention_heads');
  const layerNormEps = numberFrom(record, 'layerNormEps', 'eps', 'layer_norm_eps');
  return {
    ...(heads !== undefined ? { heads } : {}),
    ...(layerNormEps !== undefined ? { layerNormEps } : {}),
  };
}

/**
 * Infers a ViT config from tensors in timm naming and PyTorch layout: width from `cls_token`, patch size and
 * channels from the patch kernel, depth from the block count, MLP width from `fc1`, classes from the head, image
 * size from the position table (square grids only). Heads cannot be read off shapes: pass them, or rely on the
 * timm convention of 64-wide heads.
 */
export function inferVitConfig(
  tensors: ReadonlyMap<string, HostTensor>,
  hints: {
    heads?: number;
    layerNormEps?: number;
    numClasses?: number;
    dropPathRate?: number;
    source?: string;
  } = {},
): VitConfig {
  const source = hints.source ?? 'state dict';
  const need = (name: string): number[] => {
    const t = tensors.get(name);
    if (!t)
      throw new PeftError('WEIGHTS_MISMATCH', `${source}: cannot infer the ViT config without "${name}"`);
    return t.shape;
  };
  const dim = need('cls_token')[2] as number;
  const [, channels, patchSize] = need('patch_embed.proj.weight') as [number, number, number, number];
  const posTokens = need('pos_embed')[1] as number;
  const grid = Math.round(Math.sqrt(posTokens - 1));
  if (grid * grid !== posTokens - 1) {
    throw new PeftError(
      'WEIGHTS_MISMATCH',
      `${source}: pos_embed has ${posTokens} rows, not 1 + a square grid; pass options.config for non-square images`,
    );
  }
  let depth = 0;
  while (tensors.has(`blocks.${depth}.attn.qkv.weight`)) depth++;
  if (depth === 0) throw new PeftError('WEIGHTS_MISMATCH', `${source}: no blocks.{i}.attn.qkv.weight found`);
  const heads = hints.heads ?? (dim % 64 === 0 ? dim / 64 : undefined);
  if (heads === undefined) {
    throw new PeftError(
      'WEIGHTS_MISMATCH',
      `${source}: width ${dim} is not a multiple of 64, so the head count cannot be inferred; pass options.heads`,
    );
  }
  const head = tensors.get('head.weight');
  return validateVitConfig({
    imageSize: [grid * patchSize, grid * patchSize],
    patchSize,
    channels,
    dim,
    depth,
    heads,
    mlpHidden: need('blocks.0.mlp.fc1.weight')[0] as number,
    numClasses: hints.numClasses ?? (head ? (head.shape[0] as number) : 1000),
    layerNormEps: hints.layerNormEps ?? TIMM_DEFAULTS.layerNormEps,
    qkvBias: tensors.has('blocks.0.attn.qkv.bias'),
    dropPathRate: hints.dropPathRate ?? 0,
  });
}

/**
 * Builds a ViT from a host tensor map in any supported naming (timm, HF transformers, Google npz).
 */
export function vitFromTensors(
  raw: ReadonlyMap<string, HostTensor>,
  options: LoadVitOptions & { source?: string; metadata?: Record<string, string> } = {},
): LoadedVit {
  const source = options.source ?? 'state dict';
  const metadata = options.metadata ?? {};
  assertFiniteTensors(raw, source); // NaN/Inf weights would make every prediction NaN: refuse, naming the tensor
  const converted = toTimmStateDict(new Map(raw), {
    source,
    ...(options.layout !== undefined ? { layout: options.layout } : {}),
  });
  const tensors = converted.tensors;
  const hints = hintsFromMetadata(metadata);
  const replaceHead =
    options.numClasses !== undefined &&
    tensors.has('head.weight') &&
    tensors.get('head.weight')?.shape[0] !== options.numClasses;
  if (replaceHead) {
    tensors.delete('head.weight');
    tensors.delete('head.bias');
  }
  const layerNormEps =
    options.layerNormEps ??
    hints.layerNormEps ??
    (converted.layout === 'hf' ? 1e-12 : TIMM_DEFAULTS.layerNormEps);
  const heads = options.heads ?? hints.heads;
  const config =
    options.config ??
    inferVitConfig(tensors, {
      source,
      layerNormEps,
      ...(heads !== undefined ? { heads } : {}),
      ...(options.numClasses !== undefined ? { numClasses: options.numClasses } : {}),
      ...(options.dropPathRate !== undefined ? { dropPathRate: options.dropPathRate } : {}),
    });
  const model = VisionTransformer.fromTorchTensors(tensors, config, {
    source,
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
  });
  return { model, layout: converted.layout, dropped: converted.dropped, metadata };
}

async function readWeights(path: string, name: string): Promise<Uint8Array> {
  try {
    // Only a regular file is read (never /dev/zero or a FIFO); node:fs loads on use, so browser bundles never pull it.
    return await readRegularFile(path, Number.POSITIVE_INFINITY, () => '');
  } catch (error) {
    throw new PeftError('IO_FAILED', `cannot read weights file ${name}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * A Hub reference: resolved (cache first, downloaded and verified otherwise) by `@peftjs/hub`, loaded with the
 * repository's config for what shapes cannot tell (heads, eps); explicit options still win.
 */
async function loadVitFromHub(reference: string, options: LoadVitOptions): Promise<LoadedVit> {
  // Imported on use: the downloader is Node-only and stays out of browser bundles.
  const { resolveWeights } = await import('@peftjs/hub');
  const resolved = await resolveWeights(reference, options.hub);
  const hints = pretrainedHints(resolved.pretrained);
  const heads = options.heads ?? hints.heads;
  const layerNormEps = options.layerNormEps ?? hints.layerNormEps;
  const loaded = loadVitFromBytes(await readWeights(resolved.path, `${reference} (${resolved.path})`), {
    ...options,
    ...(heads !== undefined ? { heads } : {}),
    ...(layerNormEps !== undefined ? { layerNormEps } : {}),
    source: reference,
  });
  try {
    checkPretrainedGeometry(loaded.model.config, resolved.pretrained, reference);
  } catch (error) {
    loaded.model.dispose();
    throw error;
  }
  return { ...loaded, hub: resolved };
}

/**
 * Loads a ViT from a `.safetensors` file (timm or HF naming), a Google `.npz` checkpoint, or a Hub reference
 * (`hf:<org>/<repo>[@revision][:file]`, `timm:<model-name>`), fetched into the Hugging Face cache on first use.
 * Every missing, unexpected or mis-shaped tensor is reported in one error.
 */
export async function loadVit(path: string, options: LoadVitOptions = {}): Promise<LoadedVit> {
  if (isWeightsReference(path)) return loadVitFromHub(path, options);
  return loadVitFromBytes(await readWeights(path, path), { ...options, source: path });
}

/** Same as `loadVit` for bytes already in memory (browser, tests). The format is sniffed from the bytes. */
export function loadVitFromBytes(
  bytes: Uint8Array,
  options: LoadVitOptions & { source?: string } = {},
): LoadedVit {
  const source = options.source ?? 'buffer';
  const isZip = bytes[0] === 0x50 && bytes[1] === 0x4b;
  if (isZip || source.toLowerCase().endsWith('.npz')) {
    const npzOptions = options.maxNpzBytes !== undefined ? { maxInflatedBytes: options.maxNpzBytes } : {};
    return vitFromTensors(readNpz(bytes, source, npzOptions), { ...options, source });
  }
  const file = parseSafetensors(bytes, { source });
  const tensors = new Map<string, HostTensor>();
  for (const name of file.names()) tensors.set(name, file.getHost(name));
  return vitFromTensors(tensors, { ...options, source, metadata: file.metadata });
}
