import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base';

// Several entry points share modules with state (the active backend, installed kernels) and classes checked with
// instanceof (PeftError): code splitting keeps one copy of each shared module in a common chunk.
export default defineConfig({
  ...packageBuild({
    index: 'src/index.ts',
    ops: 'src/subpaths/ops.ts',
    safetensors: 'src/subpaths/safetensors.ts',
    backbone: 'src/subpaths/backbone.ts',
    internal: 'src/subpaths/internal.ts',
    testing: 'src/testing/index.ts',
  }),
  splitting: true,
});
