import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { didYouMean } from '@peftjs/core';
import { writeFileAtomic } from '@peftjs/core/internal';
import { readConfigFile, resolveRunConfig } from '../config.js';
import { UsageError } from '../errors.js';
import { lockFolder } from '../lock.js';
import { machineDescription } from '../run-folder.js';
import { renderPng } from '../plots.js';
import type { Output } from '../progress.js';
import { type SweepProgress, type SweepRecord, runSweep } from './leader.js';
import { type JobRunner, LocalRunner, type PeftCommand } from './local.js';
import { type Resolver, type SweepPlan, planSweep } from './plan.js';
import { parseQueueAddress } from './queue-protocol.js';
import { buildReport, reportChart, reportMarkdown } from './report.js';
import { type JsonMap, SWEEP_FILE, type SweepSpec } from './spec.js';
import { ResultsFile } from './store.js';

/** Options of `peft sweep` (its flags). */
export interface SweepCommandOptions {
  /** The sweep file (YAML or JSON). */
  readonly file: string;
  /** Folder of the sweep's run folders and (by default) its results file; default `sweeps/<name>`. */
  readonly out?: string;
  /** Results file (JSON lines); default `<out>/results.jsonl`. */
  readonly results?: string;
  /** Parallel jobs on this machine (local runner); default: the number of cores. */
  readonly workers?: number;
  /** Print the plan and run nothing. */
  readonly dryRun?: boolean;
  /** Write the report from the results file and run nothing. */
  readonly reportOnly?: boolean;
  /**
   * Run the jobs through the BullMQ queue at this Redis address (`redis://host:port[/db][?prefix=…]`) instead of
   * the local pool: `peft worker` processes take them.
   */
  readonly queue?: string;
  /** With `queue`: workers send each run's adapter files back into `<out>/runs/<id>/adapter/`. */
  readonly returnAdapter?: boolean;
  /** A runner other than the local pool (a queue); the leader is the same. */
  readonly runner?: (runsDir: string) => Promise<JobRunner>;
  /** How the local pool starts `peft` (default: this process's own command). */
  readonly command?: PeftCommand;
}

/** Reads a sweep file and checks it strictly, naming the file and each bad path (with did-you-mean). */
export async function readSweepFile(file: string): Promise<SweepSpec> {
  const raw = await readConfigFile(file);
  const parsed = SWEEP_FILE.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const path = issue.path.join('.');
      if (issue.code === 'unrecognized_keys') {
        return issue.keys
          .map((key) => {
            const known = knownKeys(issue.path.map(String));
            return `${file}: unknown key "${[path, key].filter(Boolean).join('.')}"${didYouMean(key, known)}`;
          })
          .join('\n');
      }
      return `${file}: ${path || '(top level)'}: ${issue.message}`;
    });
    throw new UsageError(problems.join('\n'));
  }
  return parsed.data;
}

function knownKeys(path: readonly string[]): string[] {
  const top = ['name', 'description', 'base', 'axes', 'methods', 'protocol', 'report'];
  if (path.length === 0) return top;
  if (path[0] === 'axes') return ['tasks', 'seeds', 'methods', 'options'];
  if (path[0] === 'methods') return ['label', 'config', 'grid', 'inherit'];
  if (path[0] === 'protocol') return ['name', 'selectSeed', 'grid', 'selectEpochs'];
  if (path[0] === 'report') return ['title', 'out', 'groups', 'headline', 'preamble'];
  return [];
}

/** Resolves job configs through the run-config schema (every default filled in), naming the sweep file in errors. */
export function sweepResolver(file: string): Resolver {
  const baseDir = dirname(resolve(file));
  return async (config: JsonMap) => {
    const run = await resolveRunConfig({ config: { value: config, source: `${file} (job)`, baseDir } });
    return JSON.parse(JSON.stringify(run.config)) as JsonMap;
  };
}

const minutes = (seconds: number) =>
  seconds >= 3600
    ? `${Math.floor(seconds / 3600)}h${String(Math.round((seconds % 3600) / 60)).padStart(2, '0')}m`
    : `${Math.round(seconds / 60)}m`;

function describeJob(r: SweepRecord): string {
  const point = Object.entries(r.point)
    .map(([path, value]) => `${path.split('.').pop()}=${JSON.stringify(value)}`)
    .join(' ');
  const score =
    r.status === 'failed'
      ? `FAILED: ${r.error}`
      : r.metrics?.testTop1 !== undefined
        ? `test ${(r.metrics.testTop1 * 100).toFixed(1)} %`
        : r.metrics?.valTop1 !== undefined
          ? `val ${(r.metrics.valTop1 * 100).toFixed(1)} % at epoch ${r.metrics.bestEpoch}`
          : 'done';
  return `${r.row} ${r.task ?? ''} seed ${String(r.seed)} ${r.phase}${point ? ` ${point}` : ''}: ${score} (${r.seconds.toFixed(0)} s)`;
}

function progressLine(p: SweepProgress): string {
  const eta = p.etaSeconds === null ? '' : ` · ETA ${minutes(p.etaSeconds)}`;
  return `[done ${p.done} · running ${p.running} · failed ${p.failed} · left ${p.remaining}${eta}]`;
}

/** Writes the report (markdown, with the hand-written analysis below its marker kept, and a PNG chart beside it). */
async function writeReport(
  spec: SweepSpec,
  plan: SweepPlan,
  results: ResultsFile,
  path: string,
  command: string,
): Promise<void> {
  const report = buildReport(spec, plan, results.path);
  const facts = [
    `Sweep \`${spec.name}\`: ${plan.jobs.length} jobs known, results in \`${results.path}\`; regenerate with \`${command}\`.`,
    `Machine of this report: ${machineDescription()}; written ${new Date().toISOString()}.`,
  ];
  const marker = '<!-- analysis: kept when the tables above are regenerated -->';
  const previous = existsSync(path) ? await readFile(path, 'utf8') : '';
  const analysis = previous.includes(marker) ? previous.slice(previous.indexOf(marker)) : '';
  const chart = `${basename(path).replace(/\.md$/, '')}.png`;
  const markdown = `${reportMarkdown(spec, report, facts)}\n![Group mean per method](${chart})\n`;
  await writeFileAtomic(path, `${markdown}${analysis ? `\n${analysis}` : ''}`);
  await writeFileAtomic(join(dirname(path), chart), await renderPng(reportChart(spec, report)));
}

/** How the sweep's jobs will run: the given runner, the queue, or the local pool (checked before anything starts). */
function runnerFactory(
  spec: SweepSpec,
  options: SweepCommandOptions,
  err: Output,
): (runsDir: string) => Promise<JobRunner> {
  if (options.runner) return options.runner;
  if (options.queue === undefined) {
    if (options.returnAdapter)
      throw new UsageError('--return-adapter needs --queue (local runs keep theirs)');
    const workers = options.workers ?? Math.max(1, cpus().length);
    return async (runsDir) => new LocalRunner(runsDir, workers, options.command);
  }
  if (options.workers !== undefined) {
    throw new UsageError(
      '--workers sets the local pool; with --queue, start `peft worker` processes instead',
    );
  }
  const address = parseQueueAddress(options.queue);
  return async (runsDir) => {
    // The queue client loads only here: a local sweep (and `peft train`) never loads it.
    const { QueueRunner } = await import('./queue.js');
    err.write(`sweep "${spec.name}": jobs go on the queue at ${address.display}; start workers with\n`);
    err.write(`  peft worker --queue ${address.display} --sweep ${spec.name}\n`);
    return QueueRunner.open({
      address,
      sweep: spec.name,
      runsDir,
      returnAdapter: options.returnAdapter === true,
      command: `peft sweep --config ${options.file} --queue ${address.display}`,
      onEvent: (line) => err.write(`  ${line}\n`),
    });
  };
}

/**
 * `peft sweep`: plans the sweep from its file and results, runs what is missing (local pool by default), records
 * every job once, and writes the report. Returns the number of failed or blocked groups (0: all fine).
 */
export async function sweepCommand(options: SweepCommandOptions, out: Output, err: Output): Promise<number> {
  const spec = await readSweepFile(options.file);
  const dir = options.out ?? join('sweeps', spec.name);
  const results = new ResultsFile(options.results ?? join(dir, 'results.jsonl'));
  const resolver = sweepResolver(options.file);
  const reportPath = spec.report.out ?? join(dir, 'report.md');
  const command = `peft sweep --config ${options.file}${options.results ? ` --results ${options.results}` : ''} --report-only`;
  if (options.dryRun || options.reportOnly) {
    const plan = await planSweep(spec, await results.read(), resolver);
    if (options.dryRun) {
      out.write(
        `${plan.jobs.length} jobs known (${plan.ready.length} to run now, ${plan.pending} more once selections finish)\n` +
          plan.ready
            .map((j) => `  ${j.id} ${j.row} ${j.task ?? ''} seed ${String(j.seed)} ${j.phase}`)
            .join('\n') +
          '\n',
      );
      return 0;
    }
    await writeReport(spec, plan, results, reportPath, command);
    out.write(`wrote ${reportPath}\n`);
    return 0;
  }
  const makeRunner = runnerFactory(spec, options, err);
  const release = await lockFolder(dir, `peft sweep --config ${options.file}`);
  const runsDir = join(dir, 'runs');
  let runner: JobRunner;
  try {
    runner = await makeRunner(runsDir);
  } catch (error) {
    await release();
    throw error;
  }
  const controller = new AbortController();
  const stop = () => {
    err.write(`stopping: ${runner.stopNote ?? 'jobs in flight are stopped and will run again next time'}\n`);
    controller.abort();
    void runner.close();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const plan = await runSweep(spec, {
      runner,
      results,
      resolve: resolver,
      signal: controller.signal,
      onProgress: (p) => {
        err.write(`${progressLine(p)}${p.finished ? ` ${describeJob(p.finished)}` : ''}\n`);
      },
    });
    await writeReport(spec, plan, results, reportPath, command);
    out.write(`wrote ${reportPath}\n`);
    return plan.blocked.length;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await runner.close();
    await release();
  }
}
