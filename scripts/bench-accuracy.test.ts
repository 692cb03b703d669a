import { describe, expect, it } from 'vitest';
import { readSweepFile, sweepResolver } from '../packages/cli/src/sweep/command.js';
import { planSweep } from '../packages/cli/src/sweep/plan.js';
import { ResultsFile } from '../packages/cli/src/sweep/store.js';

const SWEEP = 'benchmarks/mini-vtab.yaml';
const RESULTS = 'docs/results.jsonl';

describe('the committed mini-VTAB records and the committed sweep file', () => {
  it('every recorded job is still a job of the sweep (a changed default would silently orphan them)', async () => {
    const spec = await readSweepFile(SWEEP);
    const records = await new ResultsFile(RESULTS).read();
    const plan = await planSweep(spec, records, sweepResolver(SWEEP));
    const counted = new Set([...plan.records.values()].map((r) => r.id));
    const orphans = [...records.values()]
      .filter((r) => r.status === 'done' && !counted.has(r.id))
      .map((r) => `${r.row} ${r.task} seed ${r.seed} ${r.phase} ${JSON.stringify(r.point)}`);
    expect(orphans).toEqual([]);
    // Nothing recorded is planned to run again.
    expect(plan.ready.filter((job) => records.has(job.id))).toEqual([]);
  }, 120_000);
});
