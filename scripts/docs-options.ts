/**
 * Writes docs/guides/methods.md from the option schemas (`pnpm docs:options`); the test in
 * packages/cli/src/docs.test.ts fails while the committed file differs from what this writes.
 */
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { optionsMarkdown } from '../packages/cli/src/docs.js';

const path = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'guides', 'methods.md');
await writeFile(path, optionsMarkdown());
console.log(`wrote ${path}`);
