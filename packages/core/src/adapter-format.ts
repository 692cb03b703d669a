import type { VitConfig } from './config.js';
import type { JsonObject, PeftPlugin, PluginTier } from './plugin.js';
import type { ParameterKind } from './registry.js';

/**
 * PEFT-style adapter files: `adapter_config.json` (how to rebuild the plugins, against which base model) and
 * `adapter_model.safetensors` (every tensor that is not a frozen backbone weight: trainable parameters including
 * the head, and plugin buffers such as SHIP's prototype bank).
 */
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
/**
 * File name of the adapter's tensors inside an adapter directory (safetensors, every tensor stored as F32).
 */
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** Value of `AdapterConfig.format`: marks a JSON file as a PEFT.js adapter config. */
export const ADAPTER_FORMAT = 'peftjs-adapter';
/** Version of the adapter file layout this PEFT.js writes and the only one `loadAdapter` accepts. */
export const ADAPTER_FORMAT_VERSION = 1;

/**
 * How one plugin is rebuilt when an adapter is loaded (an entry of `AdapterConfig.plugins`, in run order).
 */
export interface AdapterPluginRecord {
  /**
   * Factory key (`PeftPlugin.type`, or its `name` when no type is set) looked up in
   * `LoadAdapterOptions.factories`.
   */
  type: string;
  /** The plugin's `name`; the rebuilt plugin must report the same one. */
  name: string;
  /** The plugin's own version when the adapter was saved (recorded, not checked on load). */
  version: string;
  /** The plugin's tensor namespace (`<prefix>.<name>`); the rebuilt plugin must report the same one. */
  prefix: string;
  /** The plugin's run tier (`'normal'` when the plugin did not set one). */
  tier: PluginTier;
  /**
   * A deep copy of `PeftPlugin.options`, passed to the factory to rebuild the plugin (`{}` when it had none).
   */
  options: JsonObject;
  /** The JSON artifacts the plugin recorded in `prepare`, handed back to its `restore` (`{}` when none). */
  artifacts: JsonObject;
}

/** Registry metadata of one saved tensor (an entry of `AdapterConfig.tensors`, keyed by parameter name). */
export interface AdapterTensorRecord {
  /** Tensor shape; on load it must equal the shape of the same-named tensor of the rebuilt model. */
  shape: number[];
  /**
   * Registry owner: `'head'`, a plugin name, or `'backbone'` for a backbone weight left trainable (full
   * fine-tuning, BitFit).
   */
  owner: string;
  /** `'weight'`, `'bias'` or `'buffer'` (non-trainable plugin state). */
  kind: ParameterKind;
  /** Whether the tensor was trainable when saved; restored on load for every kind except buffers. */
  trainable: boolean;
}

/**
 * Contents of `adapter_config.json`: everything besides the weights needed to rebuild a saved PEFT model on
 * its base.
 */
export interface AdapterConfig {
  /** Always `ADAPTER_FORMAT` (`'peftjs-adapter'`); any other value is rejected as `INVALID_CONFIG`. */
  format: typeof ADAPTER_FORMAT;
  /** `ADAPTER_FORMAT_VERSION` at save time; a different version is rejected as `INVALID_CONFIG`. */
  formatVersion: number;
  /** The library that wrote the file. */
  library: {
    /** Always `'peftjs'`. */
    name: 'peftjs';
    /** `PEFTJS_VERSION` of the writer. */
    version: string;
  };
  /**
   * Hook API version (`HOOK_SPEC_VERSION`) of the saved plugins, taken from the first one (1 without
   * plugins).
   */
  hookSpecVersion: number;
  /** The base backbone the adapter was trained on; `loadAdapter` refuses any other. */
  base: {
    /** Backbone geometry (the head's class count is `numClasses` below). */
    config: Omit<VitConfig, 'numClasses' | 'dropPathRate'>;
    /** sha256 over the frozen backbone weights, in name order. */
    fingerprint: string;
    /** Number of scalar values in the frozen backbone weights (head excluded); informational. */
    parameters: number;
  };
  /** Number of classes of the saved head; the rebuilt model gets a head of this size. */
  numClasses: number;
  /**
   * Root seed of the saved model (`PeftModel.rng.seed`), reused so the rebuilt model derives the same
   * streams.
   */
  seed: string;
  /** The plugins in resolved run order. */
  plugins: AdapterPluginRecord[];
  /** Every tensor in `adapter_model.safetensors` (all but frozen backbone weights), by parameter name. */
  tensors: Record<string, AdapterTensorRecord>;
}

/** A plugin factory: rebuilds a plugin from the JSON options it was saved with. */
export type PluginFactory = (options: JsonObject) => PeftPlugin;
