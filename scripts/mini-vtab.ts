/**
 * Writes the offline mini-VTAB tasks in the VTAB-1k list layout (800 train / 200 val / disjoint test).
 *
 *   pnpm mini-vtab [--root .cache/mini-vtab] [--tasks count,position,orientation,size,texture,optdigits,fashion] [--seed 0]
 *
 * Procedural tasks need nothing; optdigits and fashion need their Debian packages (see packages/mini-vtab).
 */
import { parseArgs } from 'node:util';
import { MINI_VTAB_TASKS, generateTask } from '@peftjs/mini-vtab';

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: '.cache/mini-vtab' },
    tasks: { type: 'string', default: MINI_VTAB_TASKS.map((t) => t.name).join(',') },
    seed: { type: 'string', default: '0' },
  },
});
for (const task of values.tasks.split(',')) {
  const start = performance.now();
  try {
    const folder = await generateTask(task, { root: values.root, seed: Number(values.seed) });
    console.log(`${task}: ${folder} (${((performance.now() - start) / 1000).toFixed(1)} s)`);
  } catch (error) {
    console.error(`${task}: skipped — ${(error as Error).message}`);
    process.exitCode = 1;
  }
}
