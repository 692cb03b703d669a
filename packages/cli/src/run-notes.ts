import type { JsonObject } from '@peftjs/core';
import type { ResolvedRun } from './config.js';
import type { Progress } from './progress.js';

/** What a run prints before it starts: the recipe it applied and why, how it was fitted, and preset notes. */

const show = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));

/** `path value` pairs, comma-separated. */
const pairs = (values: Readonly<Record<string, unknown>>) =>
  Object.entries(values)
    .map(([path, value]) => `${path} ${show(value)}`)
    .join(', ');

/** The console lines about the run's recipe (none when no recipe applies). */
export function recipeLines(run: ResolvedRun): string[] {
  const recipe = run.recipe;
  if (!recipe) return [];
  const overridden = Object.entries(recipe.overridden);
  return [
    `recipe: ${recipe.source} (${recipe.reason}; --model.recipe=none uses the library defaults)`,
    `  ${recipe.description}`,
    ...(Object.keys(recipe.applied).length > 0 ? [`  uses ${pairs(recipe.applied)}`] : []),
    ...(overridden.length > 0
      ? [`  yours instead: ${overridden.map(([path, o]) => `${path} ${show(o.value)} (${o.by})`).join(', ')}`]
      : []),
  ];
}

/** Prints the recipe lines, the run's notes and the preset's warnings. */
export function announceRun(run: ResolvedRun, progress: Progress, extra: readonly string[] = []): void {
  for (const line of recipeLines(run)) progress.line(line);
  for (const note of [...run.notes, ...extra, ...run.warnings]) progress.line(`note: ${note}`);
}

/** The recipe as results.json records it. */
export function recipeReport(run: ResolvedRun): JsonObject | null {
  const recipe = run.recipe;
  if (!recipe) return null;
  return JSON.parse(
    JSON.stringify({
      source: recipe.source,
      reason: recipe.reason,
      applied: recipe.applied,
      overridden: recipe.overridden,
    }),
  ) as JsonObject;
}
