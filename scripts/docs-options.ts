/**
 * Writes docs/guides/methods.md from the option schemas, and the sweep file's key table in docs/guides/sweeps.md
 * (`pnpm docs:options`); tests in packages/cli/src fail while the committed files differ from what this writes.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { optionsMarkdown } from '../packages/cli/src/docs.js';
import { withSweepFileTable } from '../packages/cli/src/sweep/spec-docs.js';

const guides = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'guides');
const path = join(guides, 'methods.md');
await writeFile(path, optionsMarkdown());
console.log(`wrote ${path}`);
// The sweep file's key table in the sweeps guide, between its markers.
const sweeps = join(guides, 'sweeps.md');
await writeFile(sweeps, withSweepFileTable(await readFile(sweeps, 'utf8')));
console.log(`wrote the sweep file table in ${sweeps}`);
