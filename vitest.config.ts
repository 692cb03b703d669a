import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const repoRoot = dirname(fileURLToPath(import.meta.url));

type ExportEntry = string | { [condition: string]: ExportEntry };

/**
 * Tests run against `src/`, never against a stale `dist/`: every `exports` subpath of every workspace package that
 * declares the `@peftjs/source` condition becomes an alias to that source file.
 */
function sourceAliases(): { find: RegExp; replacement: string }[] {
  const aliases: { find: RegExp; replacement: string }[] = [];
  const packagesDir = join(repoRoot, 'packages');
  for (const dir of readdirSync(packagesDir)) {
    const manifestPath = join(packagesDir, dir, 'package.json');
    if (!existsSync(manifestPath)) continue;
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
      name: string;
      exports?: Record<string, ExportEntry>;
    };
    for (const [subpath, entry] of Object.entries(manifest.exports ?? {})) {
      if (typeof entry !== 'object' || typeof entry['@peftjs/source'] !== 'string') continue;
      const specifier = subpath === '.' ? manifest.name : `${manifest.name}/${subpath.slice(2)}`;
      const escaped = specifier.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      aliases.push({
        find: new RegExp(`^${escaped}$`),
        replacement: resolve(packagesDir, dir, entry['@peftjs/source']),
      });
    }
  }
  return aliases;
}

export default defineConfig({
  resolve: { alias: sourceAliases() },
  test: {
    include: ['**/src/**/*.test.ts', '**/test/**/*.test.ts', 'scripts/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**', '**/build/**'],
    setupFiles: [resolve(repoRoot, 'vitest.setup.ts')],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // tfjs keeps one global engine per process; files run in separate processes, tests within a file in order.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
