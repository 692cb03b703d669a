import {
  type Json,
  type JobPhase,
  type JobSpec,
  type JsonMap,
  type SweepSpec,
  canonicalJson,
  cartesian,
  jobId,
  mergeJson,
  rowOrder,
  setPaths,
} from './spec.js';

/**
 * The protocol of a sweep as a pure function of its spec and the records so far: which jobs exist, which are done,
 * which can run now, and what each selection chose. The leader calls it again after every finished job, so a
 * restarted leader (or one whose workers died) continues from the records alone.
 */

/** What a finished job left in the results file. */
export interface JobRecord {
  /** The job id (hash of the resolved config). */
  readonly id: string;
  /** `done` (metrics present) or `failed` (error present). */
  readonly status: 'done' | 'failed';
  /** Row, phase, task, seed, variant and candidate of the job. */
  readonly row: string;
  readonly phase: JobPhase;
  readonly task: string | null;
  readonly seed: Json;
  readonly variant: JsonMap;
  readonly point: JsonMap;
  /** What the run measured. */
  readonly metrics?: JobMetrics;
  /** Why it failed (the run's own error message). */
  readonly error?: string;
  /** The resolved config the job ran (absent in hand-made records). */
  readonly config?: JsonMap;
}

/** The numbers a run reports (`results.json`). */
export interface JobMetrics {
  /** Best validation top-1 (selection runs). */
  readonly valTop1?: number;
  /** 0-based epoch of the best validation top-1 (selection runs). */
  readonly bestEpoch?: number;
  /** Test top-1, evaluated once (refit and plain runs). */
  readonly testTop1?: number;
}

/** A job with its resolved config and id. */
export interface Job extends JobSpec {
  /** Hash of `resolved` (see `jobId`). */
  readonly id: string;
  /** The fully resolved `peft train` config. */
  readonly resolved: JsonMap;
}

/** What a selection chose for one (row, task, variant). */
export interface Choice {
  readonly row: string;
  readonly task: string | null;
  readonly variant: JsonMap;
  /** The chosen candidate's values, by option path. */
  readonly point: JsonMap;
  /** Its validation top-1. */
  readonly valTop1: number;
  /** Epochs the refits train (best validation epoch + 1, or the configured count). */
  readonly epochs: number | null;
}

/** The state of a sweep. */
export interface SweepPlan {
  /** Every job known so far (refits appear once their selection is done), in priority order. */
  readonly jobs: readonly Job[];
  /** Jobs without a record whose dependencies are met: what to run next, in priority order. */
  readonly ready: readonly Job[];
  /** Selections made so far. */
  readonly choices: readonly Choice[];
  /** Groups that cannot finish: a selection job failed. */
  readonly blocked: readonly {
    readonly row: string;
    readonly task: string | null;
    readonly reason: string;
  }[];
  /** Jobs not yet known because they wait for a selection (refits), for progress estimates. */
  readonly pending: number;
  /** The record that counts for each job with one, by job id (see `planSweep`). */
  readonly records: ReadonlyMap<string, JobRecord>;
}

/** Turns a raw config into the fully resolved one (the CLI's config resolution); refuses invalid configs. */
export type Resolver = (config: JsonMap) => Promise<JsonMap>;

interface Group {
  readonly row: string;
  readonly task: string | null;
  readonly variant: JsonMap;
}

const sameVariant = (a: JsonMap, b: JsonMap) => canonicalJson(a) === canonicalJson(b);

function groups(spec: SweepSpec): Group[] {
  const tasks = spec.axes.tasks ?? [null];
  const variants = cartesian(spec.axes.options ?? {});
  return rowOrder(spec).flatMap((row) =>
    tasks.flatMap((task) => variants.map((variant) => ({ row, task, variant }))),
  );
}

function rawConfig(spec: SweepSpec, group: Group, seed: Json, point: JsonMap, stage: JsonMap): JsonMap {
  const row = spec.methods[group.row];
  let config = mergeJson(spec.base, row?.config ?? {});
  config = setPaths(config, {
    ...(group.task !== null ? { 'data.task': group.task } : {}),
    seed,
    ...group.variant,
    ...point,
  });
  return setPaths(config, stage);
}

/** Every leaf of a JSON object by dotted path (arrays are leaves). */
function leaves(value: JsonMap, prefix = '', out = new Map<string, string>()): Map<string, string> {
  for (const [key, v] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) leaves(v, path, out);
    else out.set(path, canonicalJson(v));
  }
  return out;
}

/**
 * Whether a record written by an earlier version of the schema ran `current`: every option it recorded has the
 * same value now, and every option added since is at its default (an added option's default keeps the old
 * behaviour, as the schemas promise). Options removed since make it incompatible.
 */
export function compatibleConfig(stored: JsonMap, current: JsonMap, defaults: JsonMap): boolean {
  const before = leaves(stored);
  const now = leaves(current);
  const fallback = leaves(defaults);
  for (const [path, value] of before) if (now.get(path) !== value) return false;
  for (const [path, value] of now) {
    if (!before.has(path) && fallback.get(path) !== value) return false;
  }
  return true;
}

/** Finds the record that counts for a job: its own, or a compatible one from before a schema change. */
class RecordMatcher {
  private readonly byStage = new Map<string, JobRecord[]>();
  private readonly defaults = new Map<string, JsonMap>();

  constructor(
    private readonly records: ReadonlyMap<string, JobRecord>,
    private readonly resolve: Resolver,
  ) {
    for (const record of records.values()) {
      const key = RecordMatcher.stageKey(record);
      this.byStage.set(key, [...(this.byStage.get(key) ?? []), record]);
    }
  }

  private static stageKey(r: Pick<JobRecord, 'phase' | 'task' | 'seed' | 'variant' | 'point'>): string {
    return canonicalJson([r.phase, r.task, r.seed, r.variant, r.point]);
  }

  /** The run-config defaults of a config's method (resolved once per method). */
  private async defaultsFor(config: JsonMap): Promise<JsonMap> {
    const name = String((config.method as JsonMap | undefined)?.name ?? '');
    let defaults = this.defaults.get(name);
    if (!defaults) {
      defaults = await this.resolve(name ? { method: { name } } : {});
      this.defaults.set(name, defaults);
    }
    return defaults;
  }

  async recordFor(job: Job): Promise<JobRecord | undefined> {
    const direct = this.records.get(job.id);
    if (direct) return direct;
    for (const candidate of this.byStage.get(RecordMatcher.stageKey(job)) ?? []) {
      if (
        candidate.config &&
        compatibleConfig(candidate.config, job.resolved, await this.defaultsFor(job.resolved))
      ) {
        return candidate;
      }
    }
    return undefined;
  }
}

/** The plan under construction: jobs in priority order, selections made, groups that cannot finish. */
class Planner {
  readonly jobs: Job[] = [];
  readonly choices: Choice[] = [];
  readonly blocked: { row: string; task: string | null; reason: string }[] = [];
  pending = 0;
  private readonly cache = new Map<string, Job>();
  private readonly seeds: Json[];

  constructor(
    private readonly spec: SweepSpec,
    private readonly resolve: Resolver,
    readonly matcher: RecordMatcher,
  ) {
    this.seeds = spec.axes.seeds ?? [null];
  }

  /** The job of one stage of a group (resolved once per distinct raw config). */
  private async job(group: Group, phase: JobPhase, seed: Json, point: JsonMap, stage: JsonMap): Promise<Job> {
    const config = rawConfig(this.spec, group, seed, point, stage);
    const key = canonicalJson(config);
    let job = this.cache.get(key);
    if (!job) {
      const resolved = await this.resolve(config);
      job = { ...group, phase, seed, point, config, resolved, id: jobId(resolved) };
      this.cache.set(key, job);
    }
    return job;
  }

  private gridOf(group: Group): Record<string, Json[]> {
    const protocol = this.spec.protocol;
    return this.spec.methods[group.row]?.grid ?? (protocol.name === 'vtab' ? protocol.grid : {});
  }

  /** Protocol `none`: every seed × candidate runs once. */
  async planPlain(group: Group): Promise<void> {
    for (const seed of this.seeds) {
      for (const point of cartesian(this.gridOf(group)))
        this.jobs.push(await this.job(group, 'run', seed, point, {}));
    }
  }

  /** Options a row takes from its parent row's choice on the same task and variant; null while it has none. */
  private inherited(group: Group): JsonMap | null {
    const inherit = this.spec.methods[group.row]?.inherit;
    if (!inherit) return {};
    const { from, paths } = inherit;
    const parent = this.choices.find(
      (c) => c.row === from && c.task === group.task && sameVariant(c.variant, group.variant),
    );
    if (!parent) {
      if (this.blocked.some((b) => b.row === from && b.task === group.task)) {
        this.blocked.push({ ...group, reason: `row "${from}" could not choose` });
      }
      this.pending += cartesian(this.gridOf(group)).length + this.seeds.length;
      return null;
    }
    const values: JsonMap = {};
    for (const path of paths) {
      if (!(path in parent.point))
        throw new Error(`methods.${group.row}.inherit: row "${from}" did not choose "${path}"`);
      values[path] = parent.point[path] as Json;
    }
    return values;
  }

  /** Protocol `vtab`: the selection runs on one seed, then (once all are done) a refit per seed. */
  async planVtab(group: Group, protocol: Extract<SweepSpec['protocol'], { name: 'vtab' }>): Promise<void> {
    const inherited = this.inherited(group);
    if (inherited === null) return;
    // Inherited paths are fixed by the parent's choice, not searched again.
    const ownGrid = Object.fromEntries(
      Object.entries(this.gridOf(group)).filter(([path]) => !(path in inherited)),
    );
    const candidates = cartesian(ownGrid).map((p) => ({ ...p, ...inherited }));
    const selectSeed = protocol.selectSeed ?? (this.seeds[0] as Json);
    const results: (JobRecord | undefined)[] = [];
    for (const point of candidates) {
      const job = await this.job(group, 'select', selectSeed, point, { 'train.protocol': 'select' });
      this.jobs.push(job);
      results.push(await this.matcher.recordFor(job));
    }
    const failed = results.find((r) => r?.status === 'failed');
    if (failed) {
      this.blocked.push({
        ...group,
        reason: `selection run ${failed.id} failed: ${failed.error ?? 'unknown error'}`,
      });
      return;
    }
    if (results.some((r) => r === undefined)) {
      this.pending += this.seeds.length;
      return;
    }
    let best = 0;
    for (const [i, r] of results.entries()) {
      if ((r?.metrics?.valTop1 ?? -1) > (results[best]?.metrics?.valTop1 ?? -1)) best = i;
    }
    const chosen = results[best] as JobRecord;
    const epochs = protocol.selectEpochs ? (chosen.metrics?.bestEpoch ?? 0) + 1 : null;
    const point = candidates[best] as JsonMap;
    this.choices.push({ ...group, point, valTop1: chosen.metrics?.valTop1 ?? Number.NaN, epochs });
    const stage: JsonMap = {
      'train.protocol': 'refit',
      ...(epochs !== null ? { 'train.stopAfterEpochs': epochs } : {}),
    };
    for (const seed of this.seeds) this.jobs.push(await this.job(group, 'refit', seed, point, stage));
  }
}

/**
 * Plans the sweep from its records (latest record per id wins). A job counts as done when a record has its id,
 * or — after the run-config schema gained options — when a record of the same stage, task, seed and candidate ran
 * a compatible config (`compatibleConfig`), so a long sweep survives upgrades without re-running anything.
 */
export async function planSweep(
  spec: SweepSpec,
  records: ReadonlyMap<string, JobRecord>,
  resolve: Resolver,
): Promise<SweepPlan> {
  const planner = new Planner(spec, resolve, new RecordMatcher(records, resolve));
  const protocol = spec.protocol;
  for (const group of groups(spec)) {
    if (protocol.name === 'none') await planner.planPlain(group);
    else await planner.planVtab(group, protocol);
  }
  // Two rows can share a job (a row that fixes SHIP's λ at a value SHIP also tried): keep its first occurrence.
  const unique = [...new Map(planner.jobs.map((job) => [job.id, job] as const)).keys()].map(
    (id) => planner.jobs.find((job) => job.id === id) as Job,
  );
  const matched = new Map<string, JobRecord>();
  for (const job of unique) {
    const record = await planner.matcher.recordFor(job);
    if (record) matched.set(job.id, record);
  }
  return {
    jobs: unique,
    ready: unique.filter((j) => !matched.has(j.id)),
    choices: planner.choices,
    blocked: planner.blocked,
    pending: planner.pending,
    records: matched,
  };
}
