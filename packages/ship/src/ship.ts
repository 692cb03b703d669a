import { type DecoupledAttentionOptions, decoupledAttention } from '@peftjs/decoupled-attention';
import { type HierarchyOptions, hierarchyPlugin } from '@peftjs/hierarchy';
import { type PromptMatchingLossOptions, promptMatchingLoss } from '@peftjs/pml';
import { type ShipPromptsOptions, shipPrompts } from '@peftjs/prompts';
import type { JsonObject, PeftPlugin, PluginFactory } from '@peftjs/core';

/**
 * SHIP (Semantic Hierarchical Prompt tuning, arXiv 2412.16956) as a bundle of four plugins with the paper's
 * defaults: hierarchy analysis (τ = 0.93, CLS features, 200 prototypes) → SIP/SSP/AP prompts (K = 50) → prompt
 * matching loss (weight 0.5) → decoupled attention (λ = 0.1). Every component can be tuned or switched off for
 * ablations; `false` removes a component.
 */
export interface ShipOptions {
  /** Grouping threshold τ (≥ 1: one hierarchy per block). Default 0.93. */
  threshold?: number;
  /** Drop hierarchy starts ≥ this block. */
  endLayer?: number;
  /** SIP length K. Default 50. */
  promptLength?: number;
  /** Fixed hierarchy starts; skips the grouping (prototypes are still computed when AP is on). */
  starts?: number[];
  /**
   * Further options of the hierarchy plugin (`hierarchyPlugin`); `threshold` and `endLayer` are set above.
   */
  hierarchy?: Omit<HierarchyOptions, 'threshold' | 'endLayer'>;
  /**
   * Further options of the prompt plugin (`shipPrompts`), e.g. `ap: false`; `promptLength` and `starts` are
   * set above.
   */
  prompts?: Omit<ShipPromptsOptions, 'promptLength' | 'starts'>;
  /** Prompt matching loss options, or false to remove it. */
  pml?: PromptMatchingLossOptions | false;
  /** Decoupled attention options, or false for standard joint attention (prompts query everywhere). */
  decoupledAttention?: DecoupledAttentionOptions | false;
}

/**
 * The SHIP plugins, in run order: hierarchy (omitted when `starts` is given and AP is off), prompts, prompt
 * matching loss and decoupled attention (each unless `false`). Pass the array to `createPeftModel`, then run
 * `PeftModel.prepare` before training.
 */
export function ship(options: ShipOptions = {}): PeftPlugin[] {
  const plugins: PeftPlugin[] = [];
  const needsHierarchy = !options.starts || (options.prompts?.ap ?? true);
  if (needsHierarchy) {
    plugins.push(
      hierarchyPlugin({
        ...options.hierarchy,
        threshold: options.threshold ?? 0.93,
        ...(options.endLayer !== undefined ? { endLayer: options.endLayer } : {}),
      }),
    );
  }
  plugins.push(
    shipPrompts({
      ...options.prompts,
      promptLength: options.promptLength ?? 50,
      ...(options.starts ? { starts: options.starts } : {}),
    }),
  );
  if (options.pml !== false) plugins.push(promptMatchingLoss(options.pml ?? {}));
  if (options.decoupledAttention !== false)
    plugins.push(decoupledAttention(options.decoupledAttention ?? {}));
  return plugins;
}

/**
 * Factories that rebuild each SHIP plugin from the options saved in an adapter file:
 * `loadAdapter(base, dir, { factories: SHIP_PLUGIN_FACTORIES })`.
 */
export const SHIP_PLUGIN_FACTORIES: Readonly<Record<string, PluginFactory>> = Object.freeze({
  'ship-hierarchy': (options: JsonObject) => hierarchyPlugin(options as unknown as HierarchyOptions),
  'ship-prompts': (options: JsonObject) => shipPrompts(options as unknown as ShipPromptsOptions),
  'ship-pml': (options: JsonObject) => promptMatchingLoss(options as unknown as PromptMatchingLossOptions),
  'decoupled-attention': (options: JsonObject) =>
    decoupledAttention(options as unknown as DecoupledAttentionOptions),
});
