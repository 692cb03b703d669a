import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { PEFTJS_VERSION } from './version.js';

it('PEFTJS_VERSION follows the package version written by changesets', () => {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  expect(PEFTJS_VERSION).toBe(manifest.version);
});
