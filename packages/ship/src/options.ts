import { z } from '@peftjs/core';
import { DECOUPLED_ATTENTION_PLUGIN } from '@peftjs/decoupled-attention';
import { HIERARCHY_PLUGIN } from '@peftjs/hierarchy';
import { PML_PLUGIN } from '@peftjs/pml';
import { SHIP_PROMPTS_PLUGIN } from '@peftjs/prompts';

const hierarchyFields = HIERARCHY_PLUGIN.options.shape;
const promptFields = SHIP_PROMPTS_PLUGIN.options.shape;

/**
 * SHIP's options, composed from its components' schemas (the defaults stay in the component packages): τ and
 * `endLayer` of the hierarchy, K and fixed `starts` of the prompts at the top level; every other option of each
 * component under its own key; `false` removes the loss or the decoupled attention (ablations).
 */
export const SHIP_OPTIONS = z.strictObject({
  threshold: hierarchyFields.threshold,
  endLayer: hierarchyFields.endLayer,
  promptLength: promptFields.promptLength,
  starts: promptFields.starts.describe(
    'fixed hierarchy starts: skips the grouping (prototypes are still computed when AP is on); null: from the data',
  ),
  hierarchy: HIERARCHY_PLUGIN.options
    .omit({ threshold: true, endLayer: true })
    .prefault({})
    .describe('further options of the hierarchy plugin (@peftjs/hierarchy)'),
  prompts: SHIP_PROMPTS_PLUGIN.options
    .omit({ promptLength: true, starts: true })
    .prefault({})
    .describe('further options of the prompt plugin (@peftjs/prompts), e.g. ap: false'),
  pml: z
    .union([z.literal(false), PML_PLUGIN.options])
    .prefault({})
    .describe('prompt matching loss options (@peftjs/pml), or false to remove it'),
  decoupledAttention: z
    .union([z.literal(false), DECOUPLED_ATTENTION_PLUGIN.options])
    .prefault({})
    .describe('decoupled attention options (@peftjs/decoupled-attention), or false for joint attention'),
});

/** Options of `ship` as given: every key optional (see `SHIP_OPTIONS`; the paper's defaults). */
export type ShipOptions = z.input<typeof SHIP_OPTIONS>;
/** SHIP's options after parsing: every default filled in. */
export type ResolvedShipOptions = z.output<typeof SHIP_OPTIONS>;
