import type { BackendChoice } from '@peftjs/core';
import type { EvalMetrics } from '@peftjs/train';
import type { ResolvedRun } from './config.js';
import type { RunSplits } from './data-source.js';
import { predictionRows } from './predictions.js';
import type { Fitted } from './protocols.js';
import { type RunFolder, writeReport } from './run-folder.js';
import { recipeReport } from './run-notes.js';

/** The backend and the kernels it runs, in words (recorded with every result). */
export function describeKernels(choice: BackendChoice): string {
  return `${choice.backend}${choice.native.installed ? ` + native ${choice.native.isa} kernels` : ''}`;
}

/**
 * predictions.jsonl, results.json and report.md (with the method's own lines and figures) of a trained run, as one
 * file set: all of them or none.
 */
export async function writeResults(
  run: ResolvedRun,
  folder: RunFolder,
  fitted: Fitted,
  test: EvalMetrics | null,
  facts: ResultFacts,
): Promise<{ trainable: number; trainableWithoutHead: number }> {
  folder.stage();
  const parameters = await stageResults(run, folder, fitted, test, facts);
  await folder.commit();
  return parameters;
}

/** What a run's results record besides the model and its metrics. */
export interface ResultFacts {
  backend: string;
  kernels: string;
  fingerprint: string;
  wallSeconds: number;
  testSource: RunSplits['sources']['test'];
  classNames?: readonly string[];
}

async function stageResults(
  run: ResolvedRun,
  folder: RunFolder,
  fitted: Fitted,
  test: EvalMetrics | null,
  facts: ResultFacts,
): Promise<{ trainable: number; trainableWithoutHead: number }> {
  const { config, method } = run;
  const { model, result, histories } = fitted;
  if (test) {
    const rows = predictionRows(test, facts.testSource, facts.classNames);
    await folder.writeFile('predictions.jsonl', `${rows.map((row) => JSON.stringify(row)).join('\n')}\n`);
  }
  const report = model.parameterReport();
  const parameters = {
    total: report.total,
    trainable: report.trainable,
    trainableWithoutHead: report.trainableWithoutHead,
  };
  const methodReport = method.report ? await method.report(model, config.method.options) : undefined;
  const recipe = recipeReport(run);
  await folder.writeJson('results.json', {
    method: config.method.name,
    ...(methodReport ? { methodReport: methodReport.fields } : {}),
    protocol: config.train.protocol,
    selection: result.selection,
    ...(result.selectionWarning ? { selectionWarning: result.selectionWarning } : {}),
    ...(fitted.validation ? { validation: fitted.validation } : {}),
    ...(fitted.fit ? { fit: fitted.fit } : {}),
    epochsTrained: result.epochsCompleted,
    ...(test
      ? {
          test: {
            top1: test.top1,
            top5: test.top5,
            count: test.count,
            perClass: test.perClass,
            confusion: test.confusion,
          },
        }
      : {}),
    parameters,
    ...(recipe ? { recipe } : {}),
    base: { fingerprint: facts.fingerprint },
    backend: { name: facts.backend, kernels: facts.kernels },
    wallSeconds: facts.wallSeconds,
  });
  const fitLine = fitted.fit
    ? [
        `fitted without training: chose ${JSON.stringify(fitted.fit.chosen)} on val (` +
          fitted.fit.candidates
            .map((c) => `${JSON.stringify(c.setting)} ${(c.valTop1 * 100).toFixed(1)} %`)
            .join(', ') +
          `), then fitted on ${fitted.fit.fittedOn} images`,
      ]
    : [];
  const recipeLine = run.recipe ? [`recipe: ${run.recipe.source} (${run.recipe.reason})`] : [];
  await writeReport(folder, {
    title: `${config.method.name} on ${config.data.task ?? config.data.root}`,
    method: config.method.name,
    parameters,
    histories,
    result,
    test,
    ...(fitted.validation ? { validation: fitted.validation } : {}),
    ...(methodReport ? { methodReport } : {}),
    extraLines: [...recipeLine, ...fitLine],
    backend: facts.backend,
    kernels: facts.kernels,
    fingerprint: facts.fingerprint,
    wallSeconds: facts.wallSeconds,
  });
  return parameters;
}
