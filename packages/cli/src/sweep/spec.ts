import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * A sweep file: a base `peft train` config, the rows to compare (methods and their variants), the axes that cross
 * them (tasks, seeds, any option path) and a protocol that says how candidates are chosen. `expand` turns it into
 * jobs; each job is one `peft train` run whose id is the hash of its fully resolved config, so a job is never run
 * or counted twice.
 */

/** A JSON value as a sweep file may hold it. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
/** A JSON object (a config or a part of one). */
export type JsonMap = { [key: string]: Json };

const json: z.ZodType<Json> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(json), z.record(z.string(), json)]),
);
const jsonMap = z.record(z.string(), json);
/** Option path → the values to try, e.g. `{ "train.lr": [0.001, 0.003] }`. */
const valuesByPath = z.record(
  z.string().regex(/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/),
  z.array(json).min(1),
);

const ROW = z.strictObject({
  label: z.string().optional().describe('name shown in the report (default: the row key)'),
  config: jsonMap.default({}).describe('config merged over `base` for this row (method, options, train …)'),
  grid: valuesByPath.optional().describe("candidates chosen on validation (default: the protocol's grid)"),
  inherit: z
    .strictObject({
      from: z.string().describe('the row whose choice is taken'),
      paths: z.array(z.string()).min(1).describe('the option paths taken from it'),
    })
    .optional()
    .describe("take these options from another row's choice on the same task; select only the rest"),
});

const PROTOCOL = z.discriminatedUnion('name', [
  z.strictObject({
    name: z.literal('none').describe('run every combination once; no selection'),
  }),
  z.strictObject({
    name: z
      .literal('vtab')
      .describe(
        'choose on val200 (trained on train800) for one seed, refit on train800val200 for every seed',
      ),
    selectSeed: json.optional().describe('the seed whose selection runs choose (default: the first seed)'),
    grid: valuesByPath.default({}).describe('default candidates of every row'),
    selectEpochs: z.boolean().default(true).describe('also choose the epoch count (best val epoch + 1)'),
  }),
]);

const REPORT = z.strictObject({
  title: z.string().default('Sweep results').describe('heading of the report'),
  out: z.string().optional().describe('markdown file the report is written to (a PNG chart beside it)'),
  groups: z.record(z.string(), z.array(z.string())).optional().describe('task groups for group means'),
  headline: z.tuple([z.string(), z.string()]).optional().describe('two rows compared in one sentence'),
  preamble: z.string().optional().describe('markdown placed before the tables (backbone, protocol, budget)'),
});

/** The sweep file's schema (strict: unknown keys are refused). */
export const SWEEP_FILE = z.strictObject({
  name: z
    .string()
    .regex(/^[\w.-]+$/)
    .describe('sweep name (file-system safe)'),
  description: z.string().optional().describe('what the sweep is for (free text)'),
  base: jsonMap.default({}).describe('the peft train config every job starts from'),
  axes: z
    .strictObject({
      tasks: z.array(z.string()).optional().describe('values of data.task'),
      seeds: z.array(json).optional().describe('values of seed'),
      methods: z.array(z.string()).optional().describe('rows to run, in priority order (default: all)'),
      options: valuesByPath
        .optional()
        .describe('more option paths crossed with everything (e.g. prompt length)'),
    })
    .default({})
    .describe('what crosses the rows: every job is one combination'),
  methods: z
    .record(z.string(), ROW)
    .refine((rows) => Object.keys(rows).length > 0, 'at least one row')
    .describe('the rows of the report: a method or a variant of one, each with its config'),
  protocol: PROTOCOL.default({ name: 'none' }).describe('how candidates are chosen and refitted'),
  report: REPORT.default({ title: 'Sweep results' }).describe('where and how the report is written'),
});

/** A parsed sweep file. */
export type SweepSpec = z.output<typeof SWEEP_FILE>;
/** One row of a sweep (a method variant). */
export type SweepRow = z.output<typeof ROW>;

/** Which stage of the protocol a job belongs to. */
export type JobPhase = 'run' | 'select' | 'refit';

/** One `peft train` run of a sweep, before resolution. */
export interface JobSpec {
  /** Row key. */
  readonly row: string;
  /** Protocol stage. */
  readonly phase: JobPhase;
  /** `data.task`, or null when the sweep has no task axis. */
  readonly task: string | null;
  /** The seed. */
  readonly seed: Json;
  /** Values of the extra option axes (`axes.options`), by path. */
  readonly variant: JsonMap;
  /** The candidate's values (grid point and inherited choices), by path. */
  readonly point: JsonMap;
  /** The raw config: base ← row ← axes ← candidate ← protocol stage. */
  readonly config: JsonMap;
}

function isMap(value: Json | undefined): value is JsonMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep merge of JSON objects (arrays and scalars replace). */
export function mergeJson(base: JsonMap, over: JsonMap): JsonMap {
  const out: JsonMap = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isMap(current) && isMap(value) ? mergeJson(current, value) : structuredClone(value);
  }
  return out;
}

/** `{ "a.b": 1 }` → `{ a: { b: 1 } }`, merged into `config`. */
export function setPaths(config: JsonMap, values: JsonMap): JsonMap {
  let out = config;
  for (const [path, value] of Object.entries(values)) {
    const nested = path
      .split('.')
      .reverse()
      .reduce<Json>((inner, key) => ({ [key]: inner }), value) as JsonMap;
    out = mergeJson(out, nested);
  }
  return out;
}

/** The value at a dotted path of a config, or undefined. */
export function getPath(config: JsonMap, path: string): Json | undefined {
  let node: Json | undefined = config;
  for (const key of path.split('.')) node = isMap(node) ? node[key] : undefined;
  return node;
}

/** Every combination of the values by path, in the order given (the first path varies slowest). */
export function cartesian(values: Readonly<Record<string, readonly Json[]>>): JsonMap[] {
  let out: JsonMap[] = [{}];
  for (const [path, options] of Object.entries(values)) {
    out = out.flatMap((partial) => options.map((v) => ({ ...partial, [path]: v })));
  }
  return out;
}

/** JSON with keys sorted at every level: equal configs, equal text. */
export function canonicalJson(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isMap(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k] as Json)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Options that say where or how a job runs, not what it computes: left out of the job id. */
export const NON_IDENTITY_PATHS = ['out'] as const;

/** The job id: sha256 of the canonical resolved config without `NON_IDENTITY_PATHS`. */
export function jobId(resolved: JsonMap): string {
  const identity: JsonMap = { ...resolved };
  for (const path of NON_IDENTITY_PATHS) delete identity[path];
  return createHash('sha256').update(canonicalJson(identity)).digest('hex').slice(0, 24);
}

/** Rows in run order: `axes.methods` when given (unknown names refused), else every row in file order. */
export function rowOrder(spec: SweepSpec): string[] {
  const rows = Object.keys(spec.methods);
  const order = spec.axes.methods ?? rows;
  for (const name of order) if (!rows.includes(name)) throw new Error(`axes.methods: no row "${name}"`);
  for (const [name, row] of Object.entries(spec.methods)) {
    if (row.inherit && !rows.includes(row.inherit.from)) {
      throw new Error(`methods.${name}.inherit.from: no row "${row.inherit.from}"`);
    }
  }
  return order;
}
