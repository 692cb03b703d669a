import type { HostTensor } from '@peftjs/core/safetensors';
import { PeftError } from '@peftjs/core';

/** Naming/layout families a ViT checkpoint can come in (formats.md §4.2-4.3). */
export type WeightLayout = 'timm' | 'hf' | 'npz';

/** A checkpoint's tensors renamed and re-laid-out to timm's conventions (the result of `toTimmStateDict`). */
export interface TimmStateDict {
  /** The naming family the checkpoint was detected (or declared) to use. */
  layout: WeightLayout;
  /** timm names, PyTorch layouts (`[out, in]` linear weights, OIHW conv weight). */
  tensors: Map<string, HostTensor>;
  /** Source names deliberately left out (pre-logits / pooler, optimizer state), sorted. */
  dropped: string[];
}

/** Options of `toTimmStateDict`. */
export interface ToTimmOptions {
  /** Names the checkpoint in error messages. */
  source: string;
  /** Skips detection when the caller already knows the layout. */
  layout?: WeightLayout;
}

function shapeMismatch(message: string): never {
  throw new PeftError('SHAPE_MISMATCH', message);
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Row-major `[rows, cols]` → `[cols, rows]`. */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  if (data.length !== rows * cols)
    shapeMismatch(`transpose2d: ${data.length} elements do not form [${rows}, ${cols}]`);
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const rowStart = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[rowStart + c]!;
  }
  return out;
}

/** N-D transpose: output axis k is input axis `perm[k]` (numpy / tf semantics). */
export function transposeHost(tensor: HostTensor, perm: readonly number[]): HostTensor {
  const { shape, data } = tensor;
  const rank = shape.length;
  if (perm.length !== rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    shapeMismatch(
      `transpose: [${perm.join(', ')}] is not a permutation of the ${rank} axes of [${shape.join(', ')}]`,
    );
  }
  if (data.length !== elementCount(shape)) {
    shapeMismatch(`transpose: ${data.length} elements do not form shape [${shape.join(', ')}]`);
  }
  const outShape = perm.map((p) => shape[p]!);
  const out = new Float32Array(data.length);
  if (out.length === 0) return { shape: outShape, data: out };
  const inStrides = new Array<number>(rank);
  for (let axis = rank - 1, stride = 1; axis >= 0; axis--) {
    inStrides[axis] = stride;
    stride *= shape[axis]!;
  }
  const step = perm.map((p) => inStrides[p]!);
  const index = new Array<number>(rank).fill(0);
  let src = 0;
  // Walk the output in order while an odometer tracks the matching input offset.
  for (let o = 0; o < out.length; o++) {
    out[o] = data[src]!;
    for (let axis = rank - 1; axis >= 0; axis--) {
      src += step[axis]!;
      if (++index[axis]! < outShape[axis]!) break;
      src -= step[axis]! * outShape[axis]!;
      index[axis] = 0;
    }
  }
  return { shape: outShape, data: out };
}

const NPZ_PREFIXES = ['', 'opt/target/', 'params/'] as const;

function npzPrefix(names: Iterable<string>): string | undefined {
  const all = new Set(names);
  return NPZ_PREFIXES.find((prefix) => all.has(`${prefix}embedding/kernel`));
}

function detect(names: Iterable<string>, source: string | undefined): WeightLayout {
  const list = [...names];
  if (list.some((n) => n.includes('embeddings.patch_embeddings') || n.includes('encoder.layer.')))
    return 'hf';
  if (npzPrefix(list) !== undefined) return 'npz';
  if (list.includes('patch_embed.proj.weight')) return 'timm';
  const sample = list.slice(0, 5).map((n) => JSON.stringify(n));
  const seen = list.length === 0 ? 'no tensors' : `${list.length} tensors, e.g. ${sample.join(', ')}`;
  throw new PeftError(
    'WEIGHTS_MISMATCH',
    `${source === undefined ? '' : `${source}: `}not a ViT checkpoint in timm, HF transformers or Google npz naming (${seen})`,
  );
}

/** Tells the naming scheme from the tensor names; throws `WEIGHTS_MISMATCH` when it is none of them. */
export function detectLayout(names: Iterable<string>): WeightLayout {
  return detect(names, undefined);
}

type QkvPart = 'query' | 'key' | 'value';
type QkvKind = 'weight' | 'bias';
const QKV_PARTS: readonly QkvPart[] = ['query', 'key', 'value'];

/** What one source tensor becomes. `qkv` pieces are gathered per block and concatenated in q|k|v order. */
type Mapped =
  | { kind: 'tensor'; target: string; tensor: HostTensor }
  | { kind: 'qkv'; block: number; part: QkvPart; slot: QkvKind; tensor: HostTensor }
  | { kind: 'drop' }
  | { kind: 'unknown' }
  | { kind: 'bad'; problem: string };

const BLOCK = '(0|[1-9]\\d*)';
const HF_BLOCK = new RegExp(`^encoder\\.layer\\.${BLOCK}\\.(.+)$`);
const HF_QKV = /^attention\.attention\.(query|key|value)\.(weight|bias)$/;
const HF_BLOCK_PARTS: Readonly<Record<string, string>> = {
  layernorm_before: 'norm1',
  'attention.output.dense': 'attn.proj',
  layernorm_after: 'norm2',
  'intermediate.dense': 'mlp.fc1',
  'output.dense': 'mlp.fc2',
};
const HF_TOP: Readonly<Record<string, string>> = {
  'embeddings.cls_token': 'cls_token',
  'embeddings.position_embeddings': 'pos_embed',
  'embeddings.patch_embeddings.projection.weight': 'patch_embed.proj.weight',
  'embeddings.patch_embeddings.projection.bias': 'patch_embed.proj.bias',
  'layernorm.weight': 'norm.weight',
  'layernorm.bias': 'norm.bias',
  'classifier.weight': 'head.weight',
  'classifier.bias': 'head.bias',
};

/** HF transformers: same tensor layouts as timm, different names, q/k/v split. */
function mapHf(name: string, tensor: HostTensor): Mapped {
  const bare = name.startsWith('vit.') ? name.slice(4) : name;
  const top = Object.hasOwn(HF_TOP, bare) ? HF_TOP[bare] : undefined;
  if (top !== undefined) return { kind: 'tensor', target: top, tensor };
  if (bare === 'pooler.dense.weight' || bare === 'pooler.dense.bias') return { kind: 'drop' };
  const block = HF_BLOCK.exec(bare);
  if (block === null) return { kind: 'unknown' };
  const index = Number(block[1]);
  const rest = block[2]!;
  const qkv = HF_QKV.exec(rest);
  if (qkv !== null) {
    return { kind: 'qkv', block: index, part: qkv[1] as QkvPart, slot: qkv[2] as QkvKind, tensor };
  }
  const dot = rest.lastIndexOf('.');
  const module = rest.slice(0, dot);
  const param = rest.slice(dot + 1);
  const target = Object.hasOwn(HF_BLOCK_PARTS, module) ? HF_BLOCK_PARTS[module] : undefined;
  if (target === undefined || (param !== 'weight' && param !== 'bias')) return { kind: 'unknown' };
  return { kind: 'tensor', target: `blocks.${index}.${target}.${param}`, tensor };
}

function wrongRank(name: string, tensor: HostTensor, rank: number, what: string): Mapped {
  return {
    kind: 'bad',
    problem: `${JSON.stringify(name)} has shape [${tensor.shape.join(', ')}], expected rank ${rank} (${what})`,
  };
}

/** Flax `[in, out]` Dense kernel → PyTorch `[out, in]`. */
function denseToLinear(name: string, target: string, tensor: HostTensor): Mapped {
  if (tensor.shape.length !== 2) return wrongRank(name, tensor, 2, 'a [in, out] kernel');
  const [rows, cols] = tensor.shape as [number, number];
  return {
    kind: 'tensor',
    target,
    tensor: { shape: [cols, rows], data: transpose2d(tensor.data, rows, cols) },
  };
}

const NPZ_BLOCK = new RegExp(`^Transformer/encoderblock_${BLOCK}/(.+)$`);
const NPZ_ATTN = 'MultiHeadDotProductAttention_1/';
const NPZ_NORMS: Readonly<Record<string, string>> = { LayerNorm_0: 'norm1', LayerNorm_2: 'norm2' };
const NPZ_DENSE: Readonly<Record<string, string>> = {
  'MlpBlock_3/Dense_0': 'mlp.fc1',
  'MlpBlock_3/Dense_1': 'mlp.fc2',
};
const NPZ_PARAM: Readonly<Record<string, string>> = { scale: 'weight', bias: 'bias', kernel: 'weight' };

/** Google big_vision / vit_jax `.npz`, following timm's `_load_weights` transposes. `name` is already unprefixed. */
function mapNpz(name: string, tensor: HostTensor): Mapped {
  const same = (target: string): Mapped => ({ kind: 'tensor', target, tensor });
  switch (name) {
    case 'embedding/kernel':
      // HWIO → OIHW.
      if (tensor.shape.length !== 4) return wrongRank(name, tensor, 4, 'an HWIO conv kernel');
      return {
        kind: 'tensor',
        target: 'patch_embed.proj.weight',
        tensor: transposeHost(tensor, [3, 2, 0, 1]),
      };
    case 'embedding/bias':
      return same('patch_embed.proj.bias');
    case 'cls':
      return same('cls_token');
    case 'Transformer/posembed_input/pos_embedding':
      return same('pos_embed');
    case 'Transformer/encoder_norm/scale':
      return same('norm.weight');
    case 'Transformer/encoder_norm/bias':
      return same('norm.bias');
    case 'head/kernel':
      return denseToLinear(name, 'head.weight', tensor);
    case 'head/bias':
      return same('head.bias');
    case 'pre_logits/kernel':
    case 'pre_logits/bias':
      return { kind: 'drop' };
  }
  const block = NPZ_BLOCK.exec(name);
  if (block === null) return { kind: 'unknown' };
  const index = Number(block[1]);
  const rest = block[2]!;
  const slash = rest.lastIndexOf('/');
  const module = rest.slice(0, slash);
  const param = rest.slice(slash + 1);
  const norm = Object.hasOwn(NPZ_NORMS, module) ? NPZ_NORMS[module] : undefined;
  if (norm !== undefined && (param === 'scale' || param === 'bias')) {
    return same(`blocks.${index}.${norm}.${NPZ_PARAM[param]}`);
  }
  const dense = Object.hasOwn(NPZ_DENSE, module) ? NPZ_DENSE[module] : undefined;
  if (dense !== undefined && param === 'kernel')
    return denseToLinear(name, `blocks.${index}.${dense}.weight`, tensor);
  if (dense !== undefined && param === 'bias') return same(`blocks.${index}.${dense}.bias`);
  if (!module.startsWith(NPZ_ATTN) || (param !== 'kernel' && param !== 'bias')) return { kind: 'unknown' };
  const head = module.slice(NPZ_ATTN.length);
  if (head === 'out') {
    if (param === 'bias') return same(`blocks.${index}.attn.proj.bias`);
    // [H, dh, D] is already row-major [H*dh, D]; PyTorch wants [out, in] = [D, H*dh].
    if (tensor.shape.length !== 3) return wrongRank(name, tensor, 3, 'a [heads, head_dim, dim] kernel');
    const [heads, headDim, dim] = tensor.shape as [number, number, number];
    const data = transpose2d(tensor.data, heads * headDim, dim);
    return {
      kind: 'tensor',
      target: `blocks.${index}.attn.proj.weight`,
      tensor: { shape: [dim, heads * headDim], data },
    };
  }
  if (head !== 'query' && head !== 'key' && head !== 'value') return { kind: 'unknown' };
  if (param === 'bias') {
    // [H, dh] flattens to [H*dh] with the same data.
    if (tensor.shape.length !== 2) return wrongRank(name, tensor, 2, 'a [heads, head_dim] bias');
    const flat = { shape: [tensor.data.length], data: tensor.data };
    return { kind: 'qkv', block: index, part: head, slot: 'bias', tensor: flat };
  }
  // [D, H, dh] is row-major [D, H*dh]; transposed it is PyTorch's [H*dh, D].
  if (tensor.shape.length !== 3) return wrongRank(name, tensor, 3, 'a [dim, heads, head_dim] kernel');
  const [dim, heads, headDim] = tensor.shape as [number, number, number];
  const data = transpose2d(tensor.data, dim, heads * headDim);
  return {
    kind: 'qkv',
    block: index,
    part: head,
    slot: 'weight',
    tensor: { shape: [heads * headDim, dim], data },
  };
}

/** Stacks tensors along axis 0; all must share the trailing dims. */
function concatRows(parts: readonly HostTensor[]): HostTensor | undefined {
  const first = parts[0];
  if (first === undefined) return undefined;
  const trailing = first.shape.slice(1).join(',');
  if (parts.some((p) => p.shape.length !== first.shape.length || p.shape.slice(1).join(',') !== trailing)) {
    return undefined;
  }
  const data = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
  let offset = 0;
  for (const part of parts) {
    data.set(part.data, offset);
    offset += part.data.length;
  }
  return { shape: [parts.reduce((n, p) => n + p.shape[0]!, 0), ...first.shape.slice(1)], data };
}

function mismatch(source: string, problems: readonly string[]): never {
  throw new PeftError('WEIGHTS_MISMATCH', `${source}: ${problems.join('; ')}`);
}

/**
 * Converts a checkpoint in any supported layout to timm names and PyTorch tensor layouts (formats.md §4.3), so one
 * loader path serves all three. Unrecognised names are reported all at once rather than one per attempt.
 */
export function toTimmStateDict(tensors: Map<string, HostTensor>, options: ToTimmOptions): TimmStateDict {
  const { source } = options;
  const layout = options.layout ?? detect(tensors.keys(), source);
  const out = new Map<string, HostTensor>();
  const dropped: string[] = [];
  if (layout === 'timm') {
    for (const [name, tensor] of tensors) {
      if (name.startsWith('pre_logits.')) dropped.push(name);
      else out.set(name, tensor);
    }
    return { layout, tensors: out, dropped: dropped.sort() };
  }

  const prefix = layout === 'npz' ? (npzPrefix(tensors.keys()) ?? '') : '';
  const unknown: string[] = [];
  const problems: string[] = [];
  const origin = new Map<string, string>();
  const qkv = new Map<number, Map<string, HostTensor>>();
  let depth = 0;
  for (const [name, tensor] of tensors) {
    if (!name.startsWith(prefix)) {
      // Beside `opt/target/` live optimizer states: not weights.
      dropped.push(name);
      continue;
    }
    const mapped = layout === 'hf' ? mapHf(name, tensor) : mapNpz(name.slice(prefix.length), tensor);
    if (mapped.kind === 'unknown') unknown.push(name);
    else if (mapped.kind === 'drop') dropped.push(name);
    else if (mapped.kind === 'bad') problems.push(mapped.problem);
    else {
      const target =
        mapped.kind === 'tensor' ? mapped.target : `${mapped.block} ${mapped.part}.${mapped.slot}`;
      const earlier = origin.get(target);
      if (earlier !== undefined) {
        problems.push(`${JSON.stringify(earlier)} and ${JSON.stringify(name)} name the same tensor`);
        continue;
      }
      origin.set(target, name);
      if (mapped.kind === 'tensor') {
        out.set(mapped.target, mapped.tensor);
        const block = /^blocks\.(\d+)\./.exec(mapped.target);
        if (block !== null) depth = Math.max(depth, Number(block[1]) + 1);
      } else {
        depth = Math.max(depth, mapped.block + 1);
        const parts = qkv.get(mapped.block) ?? new Map<string, HostTensor>();
        qkv.set(mapped.block, parts);
        parts.set(`${mapped.part}.${mapped.slot}`, mapped.tensor);
      }
    }
  }
  if (unknown.length > 0) {
    problems.unshift(
      `${unknown.length} tensor name(s) not recognised as ${layout} ViT weights: ${unknown.map((n) => JSON.stringify(n)).join(', ')}`,
    );
  }

  // timm fuses q, k and v into one [3D, D] Linear, rows in q|k|v order.
  for (let block = 0; block < depth; block++) {
    const parts = qkv.get(block) ?? new Map<string, HostTensor>();
    for (const slot of ['weight', 'bias'] as const) {
      const pieces = QKV_PARTS.map((part) => parts.get(`${part}.${slot}`));
      const missing = QKV_PARTS.filter((_, i) => pieces[i] === undefined);
      if (missing.length > 0) {
        problems.push(`block ${block} lacks the attention ${missing.join('/')} ${slot}`);
        continue;
      }
      const fused = concatRows(pieces as HostTensor[]);
      if (fused === undefined) {
        const shapes = pieces.map((p) => `[${p!.shape.join(', ')}]`).join(', ');
        problems.push(`block ${block} has query/key/value ${slot} shapes that do not stack: ${shapes}`);
        continue;
      }
      out.set(`blocks.${block}.attn.qkv.${slot}`, fused);
    }
  }
  if (problems.length > 0) mismatch(source, problems);
  return { layout, tensors: out, dropped: dropped.sort() };
}
