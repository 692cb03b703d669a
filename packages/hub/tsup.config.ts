import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base';

export default defineConfig(
  packageBuild({
    index: 'src/index.ts',
    browser: 'src/browser.ts',
    reference: 'src/reference-entry.ts',
    testing: 'src/testing/index.ts',
  }),
);
