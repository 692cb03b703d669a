/**
 * Executes every ```ts run block of every guide in docs/guides/, so that the guides cannot drift from the code.
 *
 * Each block is written verbatim to docs/.guide-tmp/<guide>-<n>.ts (inside the repository, so the `@peftjs/*`
 * source aliases of vitest.config.ts apply) and imported. A block passes when its module evaluates without
 * throwing; blocks assert what they show with node:assert. A ```ts block without `run` is an error: code in the
 * guides is either executed or not TypeScript.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const docsDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const guidesDir = join(docsDir, 'guides');
const tmpDir = join(docsDir, '.guide-tmp');

interface Block {
  guide: string;
  index: number;
  line: number;
  info: string;
  code: string;
}

/** Fenced code blocks (``` only) with their info string and first line number. */
function extractBlocks(guide: string, markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  let open: { info: string; line: number; body: string[] } | null = null;
  for (const [i, line] of lines.entries()) {
    const fence = /^```(.*)$/.exec(line);
    if (!fence) {
      open?.body.push(line);
      continue;
    }
    if (open) {
      blocks.push({
        guide,
        index: blocks.length,
        line: open.line,
        info: open.info,
        code: open.body.join('\n'),
      });
      open = null;
    } else {
      open = { info: (fence[1] ?? '').trim(), line: i + 1, body: [] };
    }
  }
  if (open) throw new Error(`${guide}:${open.line}: unterminated code fence`);
  return blocks;
}

const guides = readdirSync(guidesDir)
  .filter((f) => f.endsWith('.md'))
  .sort();

rmSync(tmpDir, { recursive: true, force: true });
mkdirSync(tmpDir, { recursive: true });
afterAll(() => rmSync(tmpDir, { recursive: true, force: true }));

it('finds the guides', () => {
  expect(guides.length).toBeGreaterThanOrEqual(9);
});

for (const guide of guides) {
  const blocks = extractBlocks(guide, readFileSync(join(guidesDir, guide), 'utf8'));
  const tsBlocks = blocks.filter((b) => /^(ts|typescript)\b/.test(b.info));
  describe(guide, () => {
    it('marks every TypeScript block `ts run`', () => {
      const unmarked = tsBlocks.filter((b) => b.info !== 'ts run').map((b) => `line ${b.line}: ${b.info}`);
      expect(unmarked).toEqual([]);
    });
    for (const block of tsBlocks.filter((b) => b.info === 'ts run')) {
      it(`runs the block at line ${block.line}`, async () => {
        const file = join(tmpDir, `${guide.replace(/\.md$/, '')}-${block.line}.ts`);
        writeFileSync(file, `${block.code}\n`);
        await import(pathToFileURL(file).href);
      });
    }
  });
}
