import type { TopLevelSpec } from 'vega-lite';
import type { SweepRecord } from './leader.js';
import type { Choice, Job, SweepPlan } from './plan.js';
import { type Json, type JsonMap, type SweepSpec, canonicalJson, getPath } from './spec.js';

/**
 * The report of a sweep, from its plan and records only: test top-1 per row and task (mean ± std over seeds),
 * group means, the values each selection chose, per-seed numbers for the headline rows, and what is still missing.
 * Every number must come from a run that proved it started from the expected base: a record without the base
 * fingerprint, or with another one, is refused.
 */

/** One row of the results table. */
export interface ReportRow {
  readonly row: string;
  readonly label: string;
  /** Test top-1 by task, one value per seed that finished (in seed order). */
  readonly byTask: ReadonlyMap<string, readonly number[]>;
  /** Mean over each group's tasks (NaN unless every task of the group has a number). */
  readonly groupMeans: readonly number[];
  /** Mean of the group means (NaN unless complete). */
  readonly overall: number;
  /** Trainable parameters without the head (from the first refit). */
  readonly parameters: number | null;
  /** Total wall seconds of the row's jobs (selection included). */
  readonly seconds: number;
}

/** Everything the markdown and the chart are made from. */
export interface SweepReport {
  readonly tasks: readonly string[];
  readonly groups: readonly (readonly [name: string, tasks: readonly string[]])[];
  readonly rows: readonly ReportRow[];
  readonly choices: readonly Choice[];
  readonly fingerprint: string | null;
  readonly backends: ReadonlyMap<string, number>;
  readonly missing: number;
  readonly failed: readonly SweepRecord[];
  readonly blocked: SweepPlan['blocked'];
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: readonly number[]) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));

/** The fingerprint every record must carry: the one the sweep pins (`model.fingerprint`), else the first seen. */
function checkFingerprints(spec: SweepSpec, records: readonly SweepRecord[], source: string): string | null {
  const pinned = getPath(spec.base, 'model.fingerprint');
  let expected = typeof pinned === 'string' ? pinned : null;
  for (const r of records) {
    if (r.status !== 'done') continue;
    if (!r.baseFingerprint) {
      throw new Error(
        `${source}: record ${r.id} (${r.row}, ${r.task}, seed ${String(r.seed)}) has no base fingerprint; refusing to report it`,
      );
    }
    expected ??= r.baseFingerprint;
    if (r.baseFingerprint !== expected) {
      throw new Error(
        `${source}: record ${r.id} (${r.row}, ${r.task}, seed ${String(r.seed)}) started from base ${r.baseFingerprint}, ` +
          `not ${expected}; refusing to report it`,
      );
    }
  }
  return expected;
}

/** Builds the report data; throws when a record cannot prove its base. */
export function buildReport(spec: SweepSpec, plan: SweepPlan, source: string): SweepReport {
  const relevant = plan.jobs
    .map((j) => plan.records.get(j.id) as SweepRecord | undefined)
    .filter((r): r is SweepRecord => r !== undefined);
  const fingerprint = checkFingerprints(spec, relevant, source);
  const tasks = spec.axes.tasks ?? [];
  const groups = Object.entries(spec.report.groups ?? { all: tasks }).map(
    ([name, members]) => [name, members.filter((t) => tasks.includes(t))] as const,
  );
  const seeds = spec.axes.seeds ?? [null];
  const scored = (j: Job) => (spec.protocol.name === 'vtab' ? j.phase === 'refit' : j.phase === 'run');
  const rows: ReportRow[] = [];
  for (const row of spec.axes.methods ?? Object.keys(spec.methods)) {
    const jobs = plan.jobs.filter((j) => j.row === row);
    const byTask = new Map<string, number[]>();
    for (const task of tasks) {
      const values = seeds
        .map((seed) =>
          jobs.find((j) => scored(j) && j.task === task && canonicalJson(j.seed) === canonicalJson(seed)),
        )
        .map((j) => (j ? (plan.records.get(j.id) as SweepRecord | undefined)?.metrics?.testTop1 : undefined))
        .filter((v): v is number => v !== undefined);
      if (values.length > 0) byTask.set(task, values);
    }
    const groupMeans = groups.map(([, members]) =>
      members.length > 0 && members.every((t) => byTask.has(t))
        ? mean(members.map((t) => mean(byTask.get(t) as number[])))
        : Number.NaN,
    );
    const overall = groupMeans.some(Number.isNaN) ? Number.NaN : mean(groupMeans);
    const mine = jobs
      .map((j) => plan.records.get(j.id) as SweepRecord | undefined)
      .filter((r): r is SweepRecord => r !== undefined);
    rows.push({
      row,
      label: spec.methods[row]?.label ?? row,
      byTask,
      groupMeans,
      overall,
      parameters: mine.find((r) => r.parameters !== undefined)?.parameters ?? null,
      seconds: mine.reduce((s, r) => s + r.seconds, 0),
    });
  }
  const backends = new Map<string, number>();
  for (const r of relevant) if (r.backend) backends.set(r.backend, (backends.get(r.backend) ?? 0) + 1);
  return {
    tasks,
    groups,
    rows,
    choices: plan.choices,
    fingerprint,
    backends,
    missing: plan.ready.length + plan.pending,
    failed: relevant.filter((r) => r.status === 'failed'),
    blocked: plan.blocked,
  };
}

const pct = (x: number) => (Number.isNaN(x) ? '—' : (x * 100).toFixed(1));

function cell(values: readonly number[] | undefined): string {
  if (!values || values.length === 0) return '—';
  if (values.length === 1) return pct(values[0] as number);
  return `${pct(mean(values))} ± ${pct(std(values))}`;
}

function formatPoint(point: JsonMap, epochs: number | null): string {
  const parts = Object.entries(point).map(
    ([path, value]) => `${path.split('.').pop()} ${formatValue(value)}`,
  );
  if (epochs !== null) parts.push(`${epochs} ep`);
  return parts.join(', ') || '—';
}

function formatValue(value: Json): string {
  return typeof value === 'number' ? String(value) : JSON.stringify(value);
}

/** The report as markdown (tables, choices, per-seed numbers, missing work). */
export function reportMarkdown(spec: SweepSpec, report: SweepReport, facts: readonly string[]): string {
  const { tasks, groups, rows } = report;
  const seedCount = (r: ReportRow) => {
    const counts = [...new Set(tasks.map((t) => r.byTask.get(t)?.length ?? 0))].sort((a, b) => a - b);
    return counts.length === 1 ? `${counts[0]}` : `${counts[0]}–${counts.at(-1)}`;
  };
  const lines = [
    `# ${spec.report.title}`,
    '',
    ...(spec.report.preamble ? [spec.report.preamble.trim(), ''] : []),
    ...facts.map((f) => `- ${f}`),
    `- Base fingerprint of every run: \`${report.fingerprint ?? 'none yet'}\` (each run proved it before training).`,
    `- Backends: ${[...report.backends].map(([k, n]) => `${n} runs on ${k}`).join('; ') || 'none yet'}.`,
    '',
    `| method | seeds | ${tasks.join(' | ')} | ${groups.map(([g]) => `${g} mean`).join(' | ')} | group mean | trainable params (no head) | wall s |`,
    `|---|---|${tasks.map(() => '---').join('|')}|${groups.map(() => '---').join('|')}|---|---|---|`,
  ];
  for (const r of rows) {
    if (r.byTask.size === 0) continue;
    const complete = tasks.every((t) => r.byTask.has(t));
    lines.push(
      `| ${r.label}${complete ? '' : ' (incomplete)'} | ${seedCount(r)} | ${tasks.map((t) => cell(r.byTask.get(t))).join(' | ')} | ` +
        `${r.groupMeans.map(pct).join(' | ')} | ${pct(r.overall)} | ${r.parameters?.toLocaleString('en-US') ?? '—'} | ${r.seconds.toFixed(0)} |`,
    );
  }
  lines.push(
    '',
    "Test top-1 (%): mean ± std (population) over the seeds in the `seeds` column (a single run where it is 1); `—`: not run yet. Group mean = mean over groups of the mean over the group's tasks; a group mean needs every task of its group.",
  );
  if (report.choices.length > 0) {
    lines.push('', '## What the selection chose (on val200, never on test)', '');
    lines.push(`| method | ${tasks.join(' | ')} |`, `|---|${tasks.map(() => '---').join('|')}|`);
    for (const r of rows) {
      const mine = report.choices.filter((c) => c.row === r.row);
      if (mine.length === 0) continue;
      const at = (t: string) => mine.find((c) => c.task === t);
      lines.push(
        `| ${r.label} | ${tasks
          .map((t) => {
            const c = at(t);
            return c ? `${formatPoint(c.point, c.epochs)} (val ${pct(c.valTop1)})` : '—';
          })
          .join(' | ')} |`,
      );
    }
  }
  const headline = spec.report.headline;
  if (headline) lines.push('', ...headlineLines(report, headline));
  if (report.missing > 0 || report.blocked.length > 0 || report.failed.length > 0) {
    lines.push('', '## Still missing', '');
    if (report.missing > 0)
      lines.push(`- ${report.missing} job(s) not run yet (the sweep resumes where it stopped).`);
    for (const b of report.blocked) lines.push(`- ${b.row} on ${b.task}: ${b.reason}`);
    for (const f of report.failed)
      lines.push(`- failed: ${f.row} on ${f.task}, seed ${String(f.seed)} (${f.phase}): ${f.error}`);
  }
  return `${lines.join('\n')}\n`;
}

function headlineLines(report: SweepReport, [a, b]: readonly [string, string]): string[] {
  const ra = report.rows.find((r) => r.row === a);
  const rb = report.rows.find((r) => r.row === b);
  if (!ra || !rb || Number.isNaN(ra.overall) || Number.isNaN(rb.overall)) {
    return [`Headline: ${a} vs ${b} is not answered yet (both rows need every task).`];
  }
  const seedsOf = (r: ReportRow) => {
    const n = Math.min(...report.tasks.map((t) => r.byTask.get(t)?.length ?? 0));
    return Array.from({ length: n }, (_, s) => {
      const means = report.groups.map(([, members]) =>
        mean(members.map((t) => (r.byTask.get(t) as number[])[s] as number)),
      );
      return mean(means);
    });
  };
  const sa = seedsOf(ra);
  const sb = seedsOf(rb);
  const diff = ra.overall - rb.overall;
  return [
    `**Headline: ${ra.label} ${pct(ra.overall)} ± ${pct(std(sa))} vs ${rb.label} ${pct(rb.overall)} ± ${pct(std(sb))} group mean** ` +
      `(${diff > 0 ? `${ra.label} ahead` : `${ra.label} behind`} by ${Math.abs(diff * 100).toFixed(1)} points).`,
    `Per seed (group mean): ${ra.label} ${sa.map(pct).join(' / ')}; ${rb.label} ${sb.map(pct).join(' / ')}.`,
  ];
}

/** A bar chart of every complete row's group means (vega-lite; render with `renderPng`). */
export function reportChart(spec: SweepSpec, report: SweepReport): TopLevelSpec {
  const values = report.rows.flatMap((r) => [
    ...report.groups.map(([g], i) => ({
      method: r.label,
      group: g,
      top1: (r.groupMeans[i] as number) * 100,
    })),
    { method: r.label, group: 'group mean', top1: r.overall * 100 },
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `${spec.report.title}: test top-1 (%)`,
    background: 'white',
    // One panel per group, one horizontal bar per method: labels stay readable with one method or twenty.
    width: 360,
    height: { step: 14 },
    data: { values: values.filter((d) => Number.isFinite(d.top1)) },
    mark: 'bar',
    encoding: {
      row: {
        field: 'group',
        type: 'nominal',
        title: null,
        sort: ['group mean', ...report.groups.map(([g]) => g)],
        header: { labelAngle: 0, labelAlign: 'left', labelAnchor: 'start', labelFontWeight: 'bold' },
      },
      y: { field: 'method', type: 'nominal', title: null, sort: null, axis: { labelLimit: 220 } },
      x: { field: 'top1', type: 'quantitative', title: 'test top-1 %', scale: { domain: [0, 100] } },
      color: { field: 'method', type: 'nominal', legend: null, sort: null, scale: { scheme: 'category20' } },
    },
  };
}
