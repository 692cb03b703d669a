import {
  HOOK_SPEC_VERSION,
  type HookContext,
  type JsonObject,
  type PeftPlugin,
  PeftError,
  type SetupContext,
  type Tensor,
  type Tensor2D,
  type Tensor3D,
  type TokenStream,
  clsSaliency,
  invalidOption,
  l2Normalize,
  requireNumberInRange,
  requirePositiveInt,
  selectTokens,
  tf,
  topKSelection,
} from '@peftjs/core';

/**
 * SHIP's three prompt types (spec §3–§4), as one plugin because they share one token layout:
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
 * (shared keys `hierarchy.starts`, `hierarchy.prototypes`).
 */
export interface ShipPromptsOptions {
  /** SIP length K, the same for every hierarchy (paper default 50). */
  promptLength?: number;
  /** Hierarchy starts (first block of each hierarchy, starting at 0). Default: shared by a hierarchy plugin. */
  starts?: number[];
  /** `carry` (official code): insert at the hierarchy start and carry the outputs; `reinsert`: same parameter each block. */
  sip?: 'carry' | 'reinsert';
  /** Use the semantic-shared prompt (default true). */
  ssp?: boolean;
  /** SSP length in tokens (default 10). */
  sspLength?: number;
  /** Use attribute prompts (default true). */
  ap?: boolean;
  /** Attribute tokens per attribute hierarchy = number of salient tokens matched (default 10). */
  apLength?: number;
  /** How many of the last hierarchies get attribute prompts (default 2). */
  apHierarchies?: number;
  /** Weight of the prototype mix G in AP = mix·G + (1 − mix)·L_a (default 0.1). */
  apMix?: number;
  /** Softmax temperature over prototype cosines; null = none, as the official code (default null). */
  apTemperature?: number | null;
  /** Key prefix of the values a hierarchy plugin shares (default `hierarchy`). */
  sharedPrefix?: string;
  /** Plugin name (default `ship-prompts`). */
  name?: string;
  /**
   * Namespace of the prompt parameters (default `ship`): `<prefix>.sip.<h>`, `<prefix>.ssp`,
   * `<prefix>.ap_base` and the `<prefix>.prototypes` buffer.
   */
  prefix?: string;
}

/** `ShipPromptsOptions` validated, with defaults applied (what the plugin saves as its options). */
export interface ResolvedShipPromptsOptions {
  /** SIP length K. */
  promptLength: number;
  /** Fixed hierarchy starts, or null to take them from a hierarchy plugin's `prepare`. */
  starts: number[] | null;
  /** How SIPs move through a hierarchy. */
  sip: 'carry' | 'reinsert';
  /** Whether the semantic-shared prompt is used. */
  ssp: boolean;
  /** SSP length in tokens. */
  sspLength: number;
  /** Whether attribute prompts are used. */
  ap: boolean;
  /** Attribute tokens per attribute hierarchy. */
  apLength: number;
  /** How many of the last hierarchies get attribute prompts. */
  apHierarchies: number;
  /** Weight of the prototype mix G in AP, in [0, 1]. */
  apMix: number;
  /** Softmax temperature over prototype cosines, or null for none. */
  apTemperature: number | null;
  /** Key prefix of the values read from a hierarchy plugin. */
  sharedPrefix: string;
  /** Plugin name. */
  name: string;
  /** Namespace of the prompt parameters. */
  prefix: string;
}

/**
 * Validates `ShipPromptsOptions` (throws `INVALID_OPTION` naming the option) and fills in defaults; `starts`
 * are checked against the depth only in `setup`.
 */
export function resolveShipPromptsOptions(options: ShipPromptsOptions = {}): ResolvedShipPromptsOptions {
  const resolved: ResolvedShipPromptsOptions = {
    promptLength: requirePositiveInt('promptLength', options.promptLength ?? 50),
    starts: options.starts ? [...options.starts] : null,
    sip: options.sip ?? 'carry',
    ssp: options.ssp ?? true,
    sspLength: requirePositiveInt('sspLength', options.sspLength ?? 10),
    ap: options.ap ?? true,
    apLength: requirePositiveInt('apLength', options.apLength ?? 10),
    apHierarchies: requirePositiveInt('apHierarchies', options.apHierarchies ?? 2),
    apMix: requireNumberInRange('apMix', options.apMix ?? 0.1, 0, 1),
    apTemperature: options.apTemperature ?? null,
    sharedPrefix: options.sharedPrefix ?? 'hierarchy',
    name: options.name ?? 'ship-prompts',
    prefix: options.prefix ?? 'ship',
  };
  if (resolved.sip !== 'carry' && resolved.sip !== 'reinsert')
    invalidOption('sip', options.sip, '"carry" or "reinsert"');
  if (resolved.apTemperature !== null && !(resolved.apTemperature > 0)) {
    invalidOption('apTemperature', resolved.apTemperature, 'a positive number or null');
  }
  return resolved;
}

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
 * block 0 has no previous block to read saliency from, so it is skipped (the official code crashes there; spec §4.2).
 */
export function attributeBlocks(starts: readonly number[], count: number): number[] {
  return starts.slice(Math.max(0, starts.length - count)).filter((s) => s > 0);
}

/** SIP init: Xavier-uniform on a (1, K, D) tensor, U(±√(6 / ((K+1)·D))) (spec §3). */
export function sipInitBound(promptLength: number, dim: number): number {
  return Math.sqrt(6 / ((promptLength + 1) * dim));
}

/**
 * The SIP/SSP/AP prompt plugin. Hierarchy starts come from `options.starts` or, in `prepare`, from a
 * hierarchy plugin listed before it (which also supplies the AP prototype bank); a forward before either
 * throws.
 */
export function shipPrompts(options: ShipPromptsOptions = {}): PeftPlugin {
  const o = resolveShipPromptsOptions(options);
  let starts: number[] | null = null;
  let apBlocks: number[] = [];
  let attached = false;
  let hierarchyOfStart = new Map<number, number>();
  let hierarchyOfBlock: number[] = [];

  const jsonOptions: JsonObject = { ...o, starts: o.starts };

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
      // Kaiming-uniform with fan_in = apLength·D (the official 3-D init), spec §3.
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
    name: o.name,
    type: 'ship-prompts',
    version: '0.1.0',
    specVersion: HOOK_SPEC_VERSION,
    prefix: o.prefix,
    options: jsonOptions,
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
      const shared = ctx.shared(`${o.sharedPrefix}.starts`);
      const knownStarts = o.starts ?? (Array.isArray(shared) ? (shared as number[]) : null);
      if (!knownStarts) {
        throw new PeftError(
          'INVALID_OPTION',
          `plugin "${o.name}" needs hierarchy starts: pass options.starts or put a hierarchy plugin before it`,
        );
      }
      let prototypes: Tensor2D | null = null;
      if (o.ap) {
        const bank = ctx.shared(`${o.sharedPrefix}.prototypes`);
        if (!(bank instanceof tf.Tensor) || bank.rank !== 2 || bank.shape[1] !== ctx.config.dim) {
          throw new PeftError(
            'INVALID_OPTION',
            `plugin "${o.name}" uses attribute prompts and needs a prototype bank [k, ${ctx.config.dim}] shared as ` +
              `"${o.sharedPrefix}.prototypes" by a hierarchy plugin (or set ap: false)`,
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

/** Trainable SHIP prompt parameters (without the head) for M hierarchies, spec §8.4: M·K·D + 10·D + 2·10·D. */
export function shipPromptParameterCount(
  hierarchies: number,
  promptLength: number,
  dim: number,
  options: { sspLength?: number; apTokens?: number } = {},
): number {
  return hierarchies * promptLength * dim + (options.sspLength ?? 10) * dim + (options.apTokens ?? 20) * dim;
}
