import {
  type HookContext,
  type PeftPlugin,
  PeftError,
  type SetupContext,
  type Tensor,
  type Tensor2D,
  type Tensor3D,
  type TokenStream,
  pluginFunction,
  pluginIdentity,
  definePlugin,
  tf,
  z,
} from '@peftjs/core';
import { clsSaliency, l2Normalize, selectTokens, topKSelection } from '@peftjs/core/ops';
import { HIERARCHY_SHARED_KEYS } from '@peftjs/hierarchy';

/** Version of the prompt plugin (`PeftPlugin.version`). */
export const SHIP_PROMPTS_VERSION = '0.1.0';

/**
 * Options of SHIP's prompt plugin: the only place their defaults live (docs/ship-method.md §3–§4).
 */
export const SHIP_PROMPTS_OPTIONS = z.strictObject({
  promptLength: z.int().positive().default(50).describe('SIP length K, the same for every hierarchy'),
  starts: z
    .array(z.int().nonnegative())
    .min(1)
    .nullable()
    .default(null)
    .describe(
      'hierarchy starts (first block of each hierarchy, from 0); null takes them from a hierarchy plugin listed before',
    ),
  sip: z
    .enum(['carry', 'reinsert'])
    .default('carry')
    .describe(
      "carry: insert SIP at the hierarchy's first block and carry its outputs (official code); reinsert: the same " +
        'parameter at every block of the hierarchy',
    ),
  ssp: z.boolean().default(true).describe('use the semantic-shared prompt'),
  sspLength: z.int().positive().default(10).describe('SSP length in tokens'),
  ap: z.boolean().default(true).describe('use attribute prompts'),
  apLength: z
    .int()
    .positive()
    .default(10)
    .describe('attribute tokens per attribute hierarchy (= salient image tokens matched)'),
  apHierarchies: z
    .int()
    .positive()
    .default(2)
    .describe('how many of the last hierarchies get attribute prompts'),
  apMix: z
    .number()
    .min(0)
    .max(1)
    .default(0.1)
    .describe('weight of the prototype mix G in AP = mix·G + (1 − mix)·L_a'),
  apTemperature: z
    .number()
    .positive()
    .nullable()
    .default(null)
    .describe('softmax temperature over prototype cosines; null: none, as the official code'),
  name: z.string().min(1).default('ship-prompts').describe('plugin name'),
  prefix: z
    .string()
    .min(1)
    .default('ship')
    .describe(
      'namespace of <prefix>.sip.<h>, <prefix>.ssp, <prefix>.ap_base and the <prefix>.prototypes buffer',
    ),
});

/** Options of `shipPrompts` as given: every key optional (see `SHIP_PROMPTS_OPTIONS` for defaults). */
export type ShipPromptsOptions = z.input<typeof SHIP_PROMPTS_OPTIONS>;
/** Options of the prompt plugin after parsing: every default filled in (what the plugin records). */
export type ResolvedShipPromptsOptions = z.output<typeof SHIP_PROMPTS_OPTIONS>;

/** Validates hierarchy starts for a model of `depth` blocks. */
export function validateStarts(starts: readonly number[], depth: number, origin: string): number[] {
  const ok =
    Array.isArray(starts) &&
    starts.length > 0 &&
    starts[0] === 0 &&
    starts.every(
      (s, i) => Number.isInteger(s) && s >= 0 && s < depth && (i === 0 || s > (starts[i - 1] as number)),
    );
  if (!ok) {
    throw new PeftError(
      'INVALID_OPTION',
      `${origin}: hierarchy starts must be strictly increasing block indices beginning at 0 and below depth ${depth}; ` +
        `got ${JSON.stringify(starts)}`,
    );
  }
  return [...starts];
}

/**
 * Blocks that receive attribute prompts: the first blocks of the last `count` hierarchies. A hierarchy starting at
 * block 0 has no previous block to read saliency from, so it is skipped (the official code crashes there;
 * docs/ship-method.md §4.2).
 */
export function attributeBlocks(starts: readonly number[], count: number): number[] {
  return starts.slice(Math.max(0, starts.length - count)).filter((s) => s > 0);
}

/** SIP init: Xavier-uniform on a (1, K, D) tensor, U(±√(6 / ((K+1)·D))) (docs/ship-method.md §3.3). */
export function sipInitBound(promptLength: number, dim: number): number {
  return Math.sqrt(6 / ((promptLength + 1) * dim));
}

/**
 * SHIP's three prompt types (docs/ship-method.md §3–§4) as one plugin, because they share one token layout:
 *
 *   [ CLS | patches | SIP (K) | AP (10, attribute hierarchies only) | SSP (10) ]
 *
 * - **SIP**, semantic-independent prompts: one K-token prompt per semantic hierarchy, inserted at the hierarchy's
 *   first block and carried through it (the official code's behaviour; `sip: 'reinsert'` re-inserts the same
 *   parameter at every block of the hierarchy instead).
 * - **SSP**, the semantic-shared prompt: one 10-token prompt re-inserted at every block.
 * - **AP**, attribute prompts: at the first block of each of the last two hierarchies, the 10 most salient image
 *   tokens of the previous block (head-averaged CLS logits) are matched to a bank of k-means prototypes by cosine
 *   similarity; the softmax-weighted prototype mix G gives AP = 0.1·G + 0.9·L_a.
 *
 * At a hierarchy start every prompt of this plugin is dropped and re-inserted; prompts of other plugins are left
 * alone. Hierarchy starts and the prototype bank come from `options.starts` or from a hierarchy plugin's `prepare`
 * (under `HIERARCHY_SHARED_KEYS`); a forward before either throws.
 */
export const SHIP_PROMPTS_PLUGIN = definePlugin({
  type: 'ship-prompts',
  version: SHIP_PROMPTS_VERSION,
  description:
    "SHIP's prompts: semantic-independent (one per hierarchy), semantic-shared (every block) and attribute " +
    'prompts (built from the prototype bank) in one token layout',
  options: SHIP_PROMPTS_OPTIONS,
  create: (options) => createShipPrompts(options),
});

/** The prompt plugin from options (parsed by `SHIP_PROMPTS_OPTIONS`: unknown keys and bad values are refused). */
export const shipPrompts = pluginFunction(SHIP_PROMPTS_PLUGIN);

function createShipPrompts(o: ResolvedShipPromptsOptions): PeftPlugin {
  let starts: number[] | null = null;
  let apBlocks: number[] = [];
  let attached = false;
  let hierarchyOfStart = new Map<number, number>();
  let hierarchyOfBlock: number[] = [];

  /** Creates SIP, AP base and the prototype buffer once the hierarchy is known. */
  function buildHierarchy(
    ctx: SetupContext,
    knownStarts: number[],
    prototypes: Tensor2D | null,
    protoCount = 0,
  ): void {
    const { depth, dim } = ctx.config;
    starts = validateStarts(knownStarts, depth, `plugin "${o.name}"`);
    apBlocks = o.ap ? attributeBlocks(starts, o.apHierarchies) : [];
    hierarchyOfStart = new Map(starts.map((s, h) => [s, h]));
    hierarchyOfBlock = Array.from({ length: depth }, (_, block) => {
      let h = 0;
      (starts as number[]).forEach((s, i) => {
        if (s <= block) h = i;
      });
      return h;
    });
    const bound = sipInitBound(o.promptLength, dim);
    starts.forEach((_, h) => {
      const values = ctx.rng
        .split(`sip:${h}`)
        .fillUniform(new Float32Array(o.promptLength * dim), -bound, bound);
      ctx.addParameter(`sip.${h}`, tf.tensor3d(values, [1, o.promptLength, dim]));
    });
    if (apBlocks.length > 0) {
      // Kaiming-uniform with fan_in = apLength·D (the official 3-D init), docs/ship-method.md §3.3.
      const c = Math.sqrt(6 / (o.apLength * dim));
      const values = ctx.rng
        .split('ap-base')
        .fillUniform(new Float32Array(apBlocks.length * o.apLength * dim), -c, c);
      ctx.addParameter('ap_base', tf.tensor3d(values, [apBlocks.length, o.apLength, dim]));
      const bank = prototypes ? tf.clone(prototypes) : tf.zeros([protoCount, dim]);
      ctx.addBuffer('prototypes', bank);
    }
  }

  function requireReady(ctx: HookContext): number[] {
    if (!starts) {
      throw new PeftError(
        'HOOK_FAILED',
        `plugin "${ctx.plugin}" has no hierarchy yet: pass options.starts, run model.prepare(data) with a hierarchy ` +
          'plugin, or load an adapter',
      );
    }
    return starts;
  }

  /** AP_j = mix·softmax(cos(Z_D, A))·A + (1 − mix)·L_a[j] for the salient tokens Z_D of the previous block. */
  function attributePrompt(ctx: HookContext, stream: TokenStream, block: number): Tensor3D {
    const selection = ctx.scratch.get(`selection:${block - 1}`) as Tensor3D | undefined;
    if (!selection) throw new Error(`no saliency recorded for block ${block - 1}`);
    const j = apBlocks.indexOf(block);
    const bank = ctx.param('prototypes') as unknown as Tensor2D;
    const base = ctx.param('ap_base');
    const [batch, k] = selection.shape;
    const dim = ctx.config.dim;
    const salient = selectTokens(selection, stream.image);
    let similarity: Tensor = tf.matMul(
      tf.reshape(l2Normalize(salient), [batch * k, dim]),
      tf.transpose(l2Normalize(bank)),
    );
    if (o.apTemperature !== null) similarity = tf.div(similarity, o.apTemperature);
    const mixed = tf.reshape(tf.matMul(tf.softmax(similarity), bank), [batch, k, dim]);
    const learned = tf.slice(base, [j, 0, 0], [1, o.apLength, dim]);
    return tf.add(tf.mul(mixed, o.apMix), tf.mul(learned, 1 - o.apMix)) as Tensor3D;
  }

  return {
    ...pluginIdentity(
      { type: 'ship-prompts', version: SHIP_PROMPTS_VERSION, name: o.name, prefix: o.prefix },
      o,
    ),
    setup(ctx) {
      if (attached) {
        throw new PeftError(
          'PLUGIN_INVALID',
          `plugin "${o.name}" is already attached to a model; create a new one`,
        );
      }
      attached = true;
      const imageTokens = ctx.geometry.numImageTokens;
      if (o.ap && o.apLength > imageTokens) {
        // Each attribute prompt token is built from one of the apLength most salient image tokens.
        throw new PeftError(
          'INVALID_OPTION',
          `plugin "${o.name}": option "apLength" is ${o.apLength}, but the backbone has only ${imageTokens} image ` +
            `tokens to pick attribute prompts from; use apLength ≤ ${imageTokens} or ap: false`,
        );
      }
      if (o.ssp) {
        const b = Math.sqrt(6 / ctx.config.dim); // Kaiming-uniform, fan_in = D
        const values = ctx.rng
          .split('ssp')
          .fillUniform(new Float32Array(o.sspLength * ctx.config.dim), -b, b);
        ctx.addParameter('ssp', tf.tensor3d(values, [1, o.sspLength, ctx.config.dim]));
      }
      if (o.starts && !(o.ap && o.apLength > 0)) buildHierarchy(ctx, o.starts, null);
    },
    async prepare(ctx) {
      if (starts) return;
      const shared = ctx.shared(HIERARCHY_SHARED_KEYS.starts);
      const knownStarts = o.starts ?? (Array.isArray(shared) ? (shared as number[]) : null);
      if (!knownStarts) {
        throw new PeftError(
          'INVALID_OPTION',
          `plugin "${o.name}" needs hierarchy starts: pass options.starts or put a hierarchy plugin before it`,
        );
      }
      let prototypes: Tensor2D | null = null;
      if (o.ap) {
        const bank = ctx.shared(HIERARCHY_SHARED_KEYS.prototypes);
        if (!(bank instanceof tf.Tensor) || bank.rank !== 2 || bank.shape[1] !== ctx.config.dim) {
          throw new PeftError(
            'INVALID_OPTION',
            `plugin "${o.name}" uses attribute prompts and needs a prototype bank [k, ${ctx.config.dim}] shared as ` +
              `"${HIERARCHY_SHARED_KEYS.prototypes}" by a hierarchy plugin (or set ap: false)`,
          );
        }
        prototypes = bank as Tensor2D;
      }
      buildHierarchy(ctx, knownStarts, prototypes);
      ctx.setArtifact('starts', starts);
      if (prototypes) ctx.setArtifact('prototypeCount', prototypes.shape[0]);
    },
    restore(ctx, artifacts) {
      const saved = artifacts.starts;
      if (!Array.isArray(saved))
        throw new PeftError('INVALID_CONFIG', `plugin "${o.name}": artifact "starts" missing`);
      const count = typeof artifacts.prototypeCount === 'number' ? artifacts.prototypeCount : 0;
      if (o.ap && count <= 0) {
        throw new PeftError('INVALID_CONFIG', `plugin "${o.name}": artifact "prototypeCount" missing`);
      }
      buildHierarchy(ctx, saved as number[], null, count);
    },
    hooks: {
      blockStart(ctx, stream, block) {
        const hierarchyStarts = requireReady(ctx);
        const h = hierarchyOfStart.get(block);
        const sipOf = (i: number) => ctx.param(`sip.${i}`) as unknown as Tensor3D;
        if (h !== undefined) {
          let next = stream.filterSegments((s) => s.owner !== ctx.plugin);
          // SIP and SSP are parameters: image-independent until a block lets prompts attend to the image.
          next = next.withSegment('sip', ctx.plugin, sipOf(h), { independent: true });
          if (apBlocks.includes(block))
            next = next.withSegment('ap', ctx.plugin, attributePrompt(ctx, stream, block));
          if (o.ssp) {
            next = next.withSegment('ssp', ctx.plugin, ctx.param('ssp') as unknown as Tensor3D, {
              independent: true,
            });
          }
          return next;
        }
        // Re-inserted parameters are image-independent again, like at a hierarchy start: the backbone can then run
        // their rows once at batch 1 wherever the attention keeps prompts isolated.
        let next = stream;
        if (o.sip === 'reinsert') {
          next = next.withSegment(
            'sip',
            ctx.plugin,
            sipOf(hierarchyOfBlock[block] ?? hierarchyStarts.length - 1),
            { independent: true },
          );
        }
        if (o.ssp) {
          next = next.withSegment('ssp', ctx.plugin, ctx.param('ssp') as unknown as Tensor3D, {
            independent: true,
          });
        }
        return next;
      },
      attnLogits(ctx, logits, info) {
        // Saliency of block i−1 feeds the attribute prompt built at block i.
        if (!apBlocks.includes(info.block + 1)) return;
        const saliency = clsSaliency(logits, info.layout.numImageTokens);
        ctx.scratch.set(`selection:${info.block}`, topKSelection(saliency, o.apLength));
      },
    },
  };
}

/**
 * Trainable SHIP prompt parameters (without the head) for M hierarchies, docs/ship-method.md §8.4:
 * M·K·D + 10·D + 2·10·D.
 */
export function shipPromptParameterCount(
  hierarchies: number,
  promptLength: number,
  dim: number,
  options: { sspLength?: number; apTokens?: number } = {},
): number {
  return hierarchies * promptLength * dim + (options.sspLength ?? 10) * dim + (options.apTokens ?? 20) * dim;
}
