/**
 * Where the kernel time goes (a diagnostic, not a test): `tf.profile` grouped by kernel name and input shapes,
 * largest first.
 *
 *   pnpm profile:step [--method vpt|ship|vpt,ship] [--batch 16] [--top 30] [--repeats 1]
 *                                                                     one training step, bench:speed geometry
 *   pnpm profile:step --inference [--batch 8] [--top 30] [--repeats 5]  frozen ViT vs cached SHIP, bench:inference
 *                                                                       geometry, side by side, with matmul FLOPs
 *
 * Kernel times are wall-clock per kernel as tfjs measures them. With --repeats N the models are profiled N times in
 * alternation and each group keeps its fastest time, which shields the comparison from a shared machine's load. The
 * matmul FLOPs (2·m·n·k per product, from the shapes) do not depend on load: they say how much of a difference is
 * work. Custom-gradient scopes ("unnamed scope") are left out: their time is that of the kernels inside them.
 */
import { parseArgs } from 'node:util';
import { VisionTransformer, customVit } from '@peftjs/backbone';
import { vpt } from '@peftjs/baselines';
import { type Tensor1D, type Tensor4D, createPeftModel, describeChoice, initBackend, tf } from '@peftjs/core';
import { ship } from '@peftjs/ship';

const { values } = parseArgs({
  options: {
    method: { type: 'string', default: 'vpt' },
    batch: { type: 'string' },
    top: { type: 'string', default: '30' },
    inference: { type: 'boolean', default: false },
    repeats: { type: 'string' },
  },
});
const methods = values.method.split(',');
if (!methods.every((m) => m === 'vpt' || m === 'ship'))
  throw new Error(`--method must be vpt, ship or both (vpt,ship), got "${values.method}"`);
const batch = Number(values.batch ?? (values.inference ? 8 : 16));
if (!(Number.isInteger(batch) && batch >= 1))
  throw new Error(`--batch must be a positive integer, got "${values.batch}"`);
const top = Number(values.top);
const repeats = Number(values.repeats ?? (values.inference ? 5 : 1));

interface Group {
  calls: number;
  ms: number;
  flops: number;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** 2·m·n·k of a product kernel from its shapes (0 for other kernels). */
function matmulFlops(name: string, inputs: (number[] | null)[], outputs: (number[] | null)[]): number {
  const [a, b] = inputs;
  const out = outputs[0];
  if (!a || !b || !out) return 0;
  if (name === 'PeftjsLinear') return 2 * (size(a) / (a.at(-1) as number)) * size(b);
  if (name !== 'BatchMatMul') return 0;
  const m = out.at(-2) as number;
  const k = size(a.slice(-2)) / m;
  return 2 * size(out) * k;
}

async function profileGroups(fn: () => void): Promise<{ groups: Map<string, Group>; calls: number }> {
  const info = await tf.profile(fn);
  const groups = new Map<string, Group>();
  // A custom gradient's scope is profiled around the kernels inside it, which are profiled themselves.
  const kernels = info.kernels.filter((k) => k.name !== 'unnamed scope');
  for (const k of kernels) {
    const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
    const g = groups.get(key) ?? { calls: 0, ms: 0, flops: 0 };
    g.calls++;
    g.ms += Number(k.kernelTimeMs) || 0;
    g.flops += matmulFlops(k.name, k.inputShapes, k.outputShapes as (number[] | null)[]);
    groups.set(key, g);
  }
  return { groups, calls: kernels.length };
}

/** Profiles each of `fns` `repeats` times in alternation (after one warm-up call each); per group, the fastest. */
async function profileFastest(fns: (() => void)[]): Promise<{ groups: Map<string, Group>; calls: number }[]> {
  for (const fn of fns) fn(); // kernel set-up and first-use allocations
  const best: { groups: Map<string, Group>; calls: number }[] = [];
  for (let r = 0; r < repeats; r++)
    for (const [i, fn] of fns.entries()) {
      const run = await profileGroups(fn);
      const kept = best[i];
      if (!kept) best[i] = run;
      else
        for (const [key, g] of run.groups)
          if (g.ms < (kept.groups.get(key)?.ms ?? Number.POSITIVE_INFINITY)) kept.groups.set(key, g);
    }
  return best;
}

const totals = (groups: Map<string, Group>) =>
  [...groups.values()].reduce((t, g) => ({ ms: t.ms + g.ms, flops: t.flops + g.flops }), { ms: 0, flops: 0 });

const choice = await initBackend({ log: false });
console.log(describeChoice(choice));

if (!values.inference) {
  const vit = VisionTransformer.create(
    customVit({ imageSize: 32, patchSize: 4, dim: 192, depth: 12, heads: 3, numClasses: 10 }),
    { seed: 0 },
  );
  const images = tf.randomNormal([batch, 32, 32, 3], 0, 1, 'float32', 1) as Tensor4D;
  const labels = tf.tensor1d(
    Array.from({ length: batch }, (_, i) => i % 10),
    'int32',
  ) as Tensor1D;
  const models = methods.map((method) =>
    createPeftModel(
      vit,
      method === 'vpt'
        ? [vpt({ mode: 'shallow', tokens: 10 })]
        : ship({ starts: [0], promptLength: 10, prompts: { ap: false } }),
    ),
  );
  const steps = models.map((model) => () => {
    const out = model.lossAndGradients(images, labels, { training: true });
    out.loss.dataSync();
    tf.dispose([out.loss, ...Object.values(out.grads)]);
  });
  const profiles = await profileFastest(steps);
  for (const [i, { groups, calls }] of profiles.entries()) {
    const total = totals(groups);
    console.log(
      `${methods[i]} step, batch ${batch}${repeats > 1 ? ` (fastest of ${repeats} alternating profiles per kernel group)` : ''}: ` +
        `${calls} kernel calls, ${total.ms.toFixed(0)} ms kernel time, ` +
        `${(total.flops / 1e9).toFixed(2)} GFLOP in products (${(total.flops / 1e6 / total.ms).toFixed(1)} GFLOP/s over all kernel time)`,
    );
    console.log('share %  calls  kernel [input shapes]');
    for (const [key, g] of [...groups].sort((a, b) => b[1].ms - a[1].ms).slice(0, top))
      console.log(
        `${((100 * g.ms) / total.ms).toFixed(1).padStart(7)}  ${String(g.calls).padStart(5)}  ${key}`,
      );
  }
  for (const model of models) model.dispose();
  tf.dispose([images, labels]);
} else {
  // bench:inference geometry: ViT-Tiny/16 at 224², SHIP's cifar100 setting, prompt cache on.
  const config = customVit({ imageSize: 224, patchSize: 16, dim: 192, depth: 12, heads: 3, numClasses: 100 });
  const starts = [0, 2, 4, 6, 8, 11];
  const vit = VisionTransformer.create(config, { seed: 0 });
  const images = tf.randomNormal([batch, 224, 224, 3], 0, 1, 'float32', 1) as Tensor4D;
  const model = createPeftModel(vit, ship({ starts, promptLength: 50, hierarchy: { prototypes: 16 } }));
  model.restoreArtifacts({ 'ship-prompts': { starts, prototypeCount: 200 } });
  model.enablePromptCache();
  const [frozen, shipped] = (await profileFastest([
    () => tf.dispose(vit.predict(images)),
    () => tf.dispose(model.predict(images)),
  ])) as [{ groups: Map<string, Group>; calls: number }, { groups: Map<string, Group>; calls: number }];
  const [f, s] = [totals(frozen.groups), totals(shipped.groups)];
  console.log(
    `inference, batch ${batch}, fastest of ${repeats} alternating profiles per kernel group: frozen ${frozen.calls} kernel calls, ${f.ms.toFixed(0)} ms, ${(f.flops / 1e9).toFixed(2)} GFLOP; ` +
      `SHIP cached ${shipped.calls} calls, ${s.ms.toFixed(0)} ms, ${(s.flops / 1e9).toFixed(2)} GFLOP ` +
      `(kernel time ×${(s.ms / f.ms).toFixed(3)}, product FLOPs ×${(s.flops / f.flops).toFixed(3)})`,
  );
  // By kernel name: where SHIP's extra kernel time goes.
  const byName = (groups: Map<string, Group>) => {
    const out = new Map<string, Group>();
    for (const [key, g] of groups) {
      const name = key.split(' ')[0] as string;
      const o = out.get(name) ?? { calls: 0, ms: 0, flops: 0 };
      out.set(name, { calls: o.calls + g.calls, ms: o.ms + g.ms, flops: o.flops + g.flops });
    }
    return out;
  };
  const [fn, sn] = [byName(frozen.groups), byName(shipped.groups)];
  const names = [...new Set([...fn.keys(), ...sn.keys()])];
  const zero: Group = { calls: 0, ms: 0, flops: 0 };
  console.log(
    'kernel                 frozen ms (calls)   SHIP ms (calls)   SHIP − frozen ms   share of the difference',
  );
  for (const name of names.sort(
    (a, b) =>
      (sn.get(b) ?? zero).ms - (fn.get(b) ?? zero).ms - ((sn.get(a) ?? zero).ms - (fn.get(a) ?? zero).ms),
  )) {
    const a = fn.get(name) ?? zero;
    const b = sn.get(name) ?? zero;
    console.log(
      `${name.padEnd(22)} ${a.ms.toFixed(1).padStart(9)} (${String(a.calls).padStart(4)})   ${b.ms.toFixed(1).padStart(8)} (${String(b.calls).padStart(4)})   ${(b.ms - a.ms).toFixed(1).padStart(9)}   ${((100 * (b.ms - a.ms)) / (s.ms - f.ms)).toFixed(1).padStart(6)} %`,
    );
  }
  console.log(`\nSHIP cached, by kernel and shapes (top ${top}):`);
  console.log('share %  calls  kernel [input shapes]');
  for (const [key, g] of [...shipped.groups].sort((a, b) => b[1].ms - a[1].ms).slice(0, top))
    console.log(`${((100 * g.ms) / s.ms).toFixed(1).padStart(7)}  ${String(g.calls).padStart(5)}  ${key}`);
  model.dispose();
  vit.dispose();
  images.dispose();
}
