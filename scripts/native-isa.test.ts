/**
 * Instruction-set dispatch of @peftjs/native (issue #21). The addon picks its kernel table once at load: AVX-512
 * where the CPU and OS support it, AVX2 + FMA otherwise; `PEFTJS_NATIVE_ISA=avx2` forces the AVX2 table. Checked
 * here:
 * - the automatic choice follows the CPU's own feature list (/proc/cpuinfo), read independently of the addon;
 * - with the other table forced, the native kernel tests, the core op tests (fused vs composite) and the PyTorch
 *   parity tests of the ViT and of SHIP pass on it, within their usual tolerances (a child vitest run);
 * - on a CPU without AVX-512 the same binary loads, picks AVX2 and computes correctly: valgrind emulates such a CPU
 *   (an AVX2 Haswell; it executes no AVX-512), so an AVX-512 instruction reached on that path would abort the child.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNativeKernels } from '@peftjs/native';
import { describe, expect, it } from 'vitest';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(repoRoot, 'packages', 'native');
const status = loadNativeKernels();
const inChild = process.env.PEFTJS_EXPECT_NATIVE_ISA !== undefined;

function hasValgrind(): boolean {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The CPU flags Linux reports, or null elsewhere. */
function cpuFlags(): Set<string> | null {
  if (!existsSync('/proc/cpuinfo')) return null;
  const line = readFileSync('/proc/cpuinfo', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('flags'));
  return line ? new Set(line.split(':')[1]?.trim().split(/\s+/)) : null;
}

describe.skipIf(!status.ok || inChild)('native kernel dispatch (AVX-512 / AVX2)', () => {
  const isa = status.ok ? status.isa : 'avx2';

  it('the automatic choice is avx512 exactly where the CPU lists AVX-512F/DQ/BW/VL, else avx2', () => {
    const flags = cpuFlags();
    expect(flags, 'needs /proc/cpuinfo (Linux)').not.toBeNull();
    const avx512 = ['avx512f', 'avx512dq', 'avx512bw', 'avx512vl'].every((f) => flags?.has(f));
    expect(isa).toBe(avx512 ? 'avx512' : 'avx2');
    if (status.ok) expect(status.isaReason).toMatch(/^the best this CPU runs/);
  });

  // The machine's own table is what every other test file runs; here the other one (AVX2 on an AVX-512 CPU).
  it.skipIf(isa === 'avx2')(
    'with PEFTJS_NATIVE_ISA=avx2, native kernel, core op and PyTorch parity (ViT, SHIP) tests pass on AVX2',
    () => {
      const files = [
        'packages/native/src',
        'packages/core/src/ops.test.ts',
        'packages/backbone/src/vit.test.ts',
        'packages/ship/src/ship.test.ts',
      ];
      const run = spawnSync(
        process.execPath,
        [join(repoRoot, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...files],
        {
          cwd: repoRoot,
          encoding: 'utf8',
          env: {
            ...process.env,
            PEFTJS_NATIVE_ISA: 'avx2',
            PEFTJS_EXPECT_NATIVE_ISA: 'avx2',
            PEFTJS_TEST_BACKENDS: 'wasm',
          },
          timeout: 20 * 60 * 1000,
        },
      );
      const output = `${run.stdout}\n${run.stderr}`;
      expect(run.status, output.slice(-4000)).toBe(0);
      expect(output).toMatch(/Tests\s+.*\d+ passed/);
      expect(output).not.toMatch(/\d+ failed/);
    },
  );

  it.skipIf(!hasValgrind() && !process.env.CI)(
    'on a CPU without AVX-512 (valgrind): the addon loads, PEFTJS_NATIVE_ISA=avx512 falls back to avx2, results hold',
    () => {
      const run = spawnSync(
        'valgrind',
        ['--tool=none', '-q', process.execPath, '--import', 'tsx', 'src/test-isa-child.ts'],
        {
          cwd: nativeDir,
          encoding: 'utf8',
          env: { ...process.env, PEFTJS_NATIVE_ISA: 'avx512' },
          timeout: 10 * 60 * 1000,
        },
      );
      expect(run.status, `${run.stdout}\n${run.stderr}`.slice(-4000)).toBe(0);
      const report = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as {
        status: { ok: boolean; isa?: string; isaReason?: string };
        errors: Record<string, number>;
      };
      expect(report.status).toMatchObject({ ok: true, isa: 'avx2' });
      expect(report.status.isaReason).toMatch(
        /PEFTJS_NATIVE_ISA=avx512 asked for AVX-512, but this CPU lacks/,
      );
      expect(Object.keys(report.errors).length).toBeGreaterThanOrEqual(7);
      for (const [kernel, error] of Object.entries(report.errors)) expect(error, kernel).toBeLessThan(1e-5);
    },
  );

  it('the machine itself, forced to each table it supports, computes the same kernels within 1e-5', () => {
    const tables = isa === 'avx512' ? ['avx2', 'avx512'] : ['avx2'];
    for (const table of tables) {
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/test-isa-child.ts'], {
        cwd: nativeDir,
        encoding: 'utf8',
        env: { ...process.env, PEFTJS_NATIVE_ISA: table },
      });
      expect(run.status, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as {
        status: { ok: boolean; isa?: string; isaReason?: string };
        errors: Record<string, number>;
      };
      expect(report.status).toMatchObject({
        ok: true,
        isa: table,
        isaReason: `forced by PEFTJS_NATIVE_ISA=${table}`,
      });
      for (const [kernel, error] of Object.entries(report.errors))
        expect(error, `${table} ${kernel}`).toBeLessThan(1e-5);
    }
  });
});
