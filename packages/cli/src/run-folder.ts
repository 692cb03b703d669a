import { appendFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import {
  type BackendChoice,
  type FileSetFs,
  type JsonObject,
  type MethodReport,
  PeftError,
} from '@peftjs/core';
import { type SetFile, recoverFileSet, writeFileAtomic, writeFileSet } from '@peftjs/core/internal';
import { lockFolder } from './lock.js';
import type { EpochRecord, TrainResult } from '@peftjs/train';
import { type SeriesPoint, lineChart, methodFileData, renderPng } from './plots.js';

const PACKAGES = [
  '@peftjs/core',
  '@peftjs/backbone',
  '@peftjs/ship',
  '@peftjs/baselines',
  '@peftjs/data',
  '@peftjs/train',
  '@peftjs/cli',
  '@tensorflow/tfjs',
];

/** Versions of the packages a run used, read from their manifests. */
export function packageVersions(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const versions: Record<string, string> = {};
  for (const name of PACKAGES) {
    try {
      versions[name] = (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      // A package not resolvable from here (e.g. tfjs hoisted elsewhere) is recorded as unknown, not fatal.
      versions[name] = 'unknown';
    }
  }
  return versions;
}

export function machineDescription(): string {
  return `${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`;
}

/**
 * The files of one run: manifest.json, log.jsonl, checkpoints/, adapter/, report.md and plots. The command that
 * writes it holds the folder's lock (`create` … `close`), so two commands never interleave in one folder.
 *
 * A run's outcome (results.json with the predictions, report and plots) is one file set (`stage` … `commit`): a
 * crash or a full disk at any point leaves either all of them or none, so a folder with results.json is a finished
 * run (what `peft sweep` counts) and one without it resumes.
 */
export class RunFolder {
  private release: (() => Promise<void>) | null = null;
  private staged: SetFile[] | null = null;

  /** `fs`: filesystem calls for the file sets (tests inject faults through it). */
  constructor(
    readonly dir: string,
    private readonly fs?: FileSetFs,
  ) {}

  /**
   * Takes the folder's lock (refused, naming the other process, while one holds it) and tidies what an interrupted
   * command left: a save switched halfway is finished, stale temporary files are removed.
   */
  async create(command: string): Promise<void> {
    this.release = await lockFolder(this.dir, command);
    try {
      await recoverFileSet(this.dir, this.fs ? { fs: this.fs } : {});
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /** Releases the folder's lock. */
  async close(): Promise<void> {
    await this.release?.();
    this.release = null;
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /**
   * Appends one JSON object as a line of log.jsonl and resolves once it is written; a failed write (a full disk)
   * rejects with an error naming the file, so the command stops with it instead of losing the log.
   */
  async log(record: Record<string, unknown>): Promise<void> {
    const path = this.path('log.jsonl');
    try {
      await appendFile(path, `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`);
    } catch (error) {
      throw new PeftError('IO_FAILED', `could not write ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /** Writes a JSON file (atomically; while staging, into the staged set). */
  async writeJson(name: string, value: unknown): Promise<void> {
    await this.writeFile(name, `${JSON.stringify(value, null, 2)}\n`);
  }

  /** Writes a file (atomically; while staging, into the staged set). */
  async writeFile(name: string, data: Uint8Array | string): Promise<void> {
    if (this.staged) {
      this.staged = [...this.staged.filter((f) => f.name !== name), { name, data }];
      return;
    }
    await writeFileAtomic(this.path(name), data);
  }

  /** From now until `commit`, writes collect into one file set instead of reaching the disk. */
  stage(): void {
    if (this.staged) throw new Error(`${this.dir}: a file set is already staged`);
    this.staged = [];
  }

  /** Writes the staged files as one generation (`writeFileSet`): all of them or, after a failure, none. */
  async commit(): Promise<void> {
    const files = this.staged;
    if (!files) throw new Error(`${this.dir}: nothing staged`);
    this.staged = null;
    await writeFileSet(this.dir, files, this.fs ? { fs: this.fs } : {});
  }
}

export interface ManifestInput {
  config: unknown;
  method: { name: string; version: string };
  warnings: readonly string[];
  backend: BackendChoice;
  data: Record<string, unknown>;
  selection: string;
  selectionWarning?: string;
  weights: { path: string; layout: string };
}

export function manifest(input: ManifestInput): JsonObject {
  return JSON.parse(
    JSON.stringify({
      tool: 'peft',
      created: new Date().toISOString(),
      machine: machineDescription(),
      packages: packageVersions(),
      backend: {
        name: input.backend.backend,
        requested: input.backend.requested,
        skipped: input.backend.skipped,
      },
      seed: (input.config as { seed: unknown }).seed,
      method: input.method,
      ...(input.warnings.length > 0 ? { warnings: input.warnings } : {}),
      config: input.config,
      weights: input.weights,
      data: input.data,
      normalization: input.data.normalization ?? null,
      selection: input.selection,
      ...(input.selectionWarning ? { selectionWarning: input.selectionWarning } : {}),
    }),
  ) as JsonObject;
}

/** How a loss part is named in plots: `ce` is the cross-entropy, every other part an auxiliary loss by name. */
const termName = (part: string) => (part === 'ce' ? 'cross-entropy' : `${part} (unweighted)`);

/**
 * The training loss of every run, per epoch: the total the optimizer minimised and, when plugins add auxiliary
 * losses (SHIP's prompt matching loss), each term — the title says what the total is made of. Null without epochs.
 */
export function lossChart(histories: readonly { label: string; history: readonly EpochRecord[] }[]) {
  const parts = [
    ...new Set(histories.flatMap(({ history }) => history.flatMap((h) => Object.keys(h.parts)))),
  ];
  const auxiliary = parts.filter((p) => p !== 'ce');
  const points: SeriesPoint[] = histories.flatMap(({ label, history }) =>
    history.flatMap((h) => [
      { x: h.epoch + 1, y: h.loss, series: `${label} run`, dash: 'total' },
      ...(auxiliary.length > 0
        ? Object.entries(h.parts).map(([part, y]) => ({
            x: h.epoch + 1,
            y,
            series: `${label} run`,
            dash: termName(part),
          }))
        : []),
    ]),
  );
  if (points.length === 0) return null;
  const total =
    auxiliary.length > 0
      ? `total = cross-entropy + ${auxiliary.map((p) => `weight · ${p}`).join(' + ')}`
      : 'cross-entropy';
  return lineChart(auxiliary.length > 0 ? points : points.map(({ dash: _, ...p }) => p), {
    x: 'epoch',
    y: 'training loss (mean over the epoch)',
    title: 'Training loss',
    subtitle: total,
    integerX: true,
  });
}

/** Loss and accuracy curves, the method's own lines and figures, and report.md tying them together. */
export async function writeReport(
  folder: RunFolder,
  input: {
    title: string;
    method: string;
    parameters: { total: number; trainable: number; trainableWithoutHead: number };
    histories: { label: string; history: readonly EpochRecord[] }[];
    result: TrainResult;
    /** Null for the selection protocol, which never reads the test split. */
    test: { top1: number; top5: number | null; count: number } | null;
    /** What the protocol chose on validation (vtab, select). */
    validation?: { top1: number | null; bestEpoch: number; epochs: number };
    methodReport?: MethodReport;
    /** More bullet lines (markdown, without the leading `- `), after the method's. */
    extraLines?: readonly string[];
    wallSeconds: number;
    backend: string;
    kernels: string;
    fingerprint: string;
  },
): Promise<void> {
  const plots: string[] = [];
  const loss = lossChart(input.histories);
  if (loss) {
    await folder.writeFile('loss.png', await renderPng(loss));
    plots.push('![training loss](loss.png)');
  }
  const accuracy = input.histories.flatMap(({ label, history }) =>
    history
      .filter((h) => h.val)
      .map((h) => ({ x: h.epoch + 1, y: (h.val?.top1 ?? 0) * 100, series: `${label} run` })),
  );
  if (accuracy.length > 0) {
    await folder.writeFile(
      'accuracy.png',
      await renderPng(
        lineChart(accuracy, { x: 'epoch', y: 'val top-1 (%)', title: 'Validation accuracy', integerX: true }),
      ),
    );
    plots.push('![validation accuracy](accuracy.png)');
  }
  for (const figure of input.methodReport?.figures ?? []) {
    await folder.writeFile(figure.file, await methodFileData(figure.data));
    plots.push(`![${figure.caption}](${figure.file})`);
  }
  const r = input.result;
  const lines = [
    `# ${input.title}`,
    '',
    `- method: **${input.method}**; backend: ${input.kernels}; wall time ${input.wallSeconds.toFixed(1)} s; ${machineDescription()}`,
    `- base fingerprint: \`${input.fingerprint}\` (checked before training)`,
    `- parameters: total ${input.parameters.total.toLocaleString('en-US')}, trainable ${input.parameters.trainable.toLocaleString('en-US')}, ` +
      `trainable without head ${input.parameters.trainableWithoutHead.toLocaleString('en-US')}`,
    `- model selection: **${r.selection}**${r.selectionWarning ? ` — ${r.selectionWarning}` : ''}`,
    ...(input.validation
      ? [
          `- protocol: chose **${input.validation.epochs} epoch(s)** on val200 (best val top-1 ${input.validation.top1 === null ? 'n/a' : `${(input.validation.top1 * 100).toFixed(2)} %`} at epoch ${input.validation.bestEpoch + 1})`,
        ]
      : []),
    input.test
      ? `- test: top-1 **${(input.test.top1 * 100).toFixed(2)} %**${input.test.top5 === null ? '' : `, top-5 ${(input.test.top5 * 100).toFixed(2)} %`} on ${input.test.count} images (evaluated once)`
      : '- test: not evaluated (the selection protocol never reads the test split)',
    ...(input.methodReport?.lines ?? []).map((line) => `- ${line}`),
    ...(input.extraLines ?? []).map((line) => `- ${line}`),
    '',
    ...plots,
    '',
    '| run | epoch | loss | val top-1 |',
    '|---|---|---|---|',
    ...input.histories.flatMap(({ label, history }) =>
      history.map(
        (h) =>
          `| ${label} | ${h.epoch + 1} | ${h.loss.toFixed(4)} | ${h.val ? (h.val.top1 * 100).toFixed(2) : ''} |`,
      ),
    ),
    '',
  ];
  await folder.writeFile('report.md', lines.join('\n'));
}
