import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base';

export default defineConfig({
  ...packageBuild({ index: 'src/index.ts', bin: 'src/bin.ts' }),
  platform: 'node',
  // The queue modules (bullmq, ioredis) stay in a chunk of their own, loaded by `import()` only when
  // `peft sweep --queue` or `peft worker` runs; shared code sits in one chunk for both entries.
  splitting: true,
  banner: ({ format }) => (format === 'esm' ? {} : {}),
});
