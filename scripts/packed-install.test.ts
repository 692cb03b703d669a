/**
 * Release check (issue #9): every publishable package is packed with `pnpm pack`, each tarball's contents and
 * manifest are checked, then all tarballs are installed into a scratch project outside the workspace — offline,
 * from the workspace's pnpm store — and plain Node imports every `exports` subpath and runs a tiny model there
 * (scripts/packed-install-check.mjs). It tests `dist/`, so it needs `pnpm build` first (CI builds before testing).
 */
import { type SpawnSyncOptions, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

type ExportEntry = string | null | { [condition: string]: ExportEntry };
type DependencyMap = Record<string, string>;

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  main?: string;
  types?: string;
  bin?: string | Record<string, string>;
  exports?: Record<string, ExportEntry>;
  dependencies?: DependencyMap;
  peerDependencies?: DependencyMap;
  optionalDependencies?: DependencyMap;
  devDependencies?: DependencyMap;
}

interface Packed {
  dir: string;
  manifest: Manifest;
  tarball: string;
  /** Paths inside the tarball, without the leading `package/`. */
  files: string[];
  /** The manifest as packed (workspace ranges rewritten). */
  packedManifest: Manifest;
}

/** What check.mjs prints. */
interface CheckReport {
  subpaths: Record<string, string[]>;
  backend: string;
  skipped: { backend: string; reason: string }[];
  native: { installed: true; isa: string } | { installed: false; reason: string };
  logitsShape: number[];
  finite: boolean;
  trainableWithoutHead: number;
  pngSignature: number[];
  fromHub: { origin: string; dim: number; requests: number }[];
  typoRefusal: string;
}

/** A few names each entry point must export: a renamed or dropped export fails here, not in a user's bundle. */
const EXPECTED_EXPORTS: Record<string, readonly string[]> = {
  '@peftjs/core': [
    'initBackend',
    'tf',
    'z',
    'createPeftModel',
    'saveAdapter',
    'loadAdapter',
    'PeftError',
    'definePlugin',
    'definePluginMethod',
    'parseOptions',
  ],
  '@peftjs/core/ops': ['gelu', 'layerNorm', 'linear', 'matMulT', 'clsSaliency'],
  '@peftjs/core/safetensors': [
    'readSafetensors',
    'writeSafetensors',
    'serializeSafetensors',
    'parseSafetensors',
  ],
  '@peftjs/core/backbone': ['createHookDriver', 'PromptCache', 'validateVitConfig'],
  '@peftjs/core/internal': ['writeFileAtomic', 'installWasmCopyFreeKernels'],
  '@peftjs/core/testing': ['expectTensorClose', 'testBackends', 'expectNoLeakedTensors'],
  '@peftjs/backbone': ['VisionTransformer', 'customVit', 'loadVit', 'loadVitFromBytes'],
  '@peftjs/baselines': ['lora', 'bitfit', 'vpt', 'adapter', 'BASELINE_METHODS', 'BASELINE_PLUGIN_FACTORIES'],
  '@peftjs/cli': ['runCli', 'resolveRunConfig', 'RUN_CONFIG', 'BUILTIN_METHODS'],
  '@peftjs/data': ['ImageDataset', 'asPrepareData', 'decodeImage'],
  '@peftjs/decoupled-attention': ['decoupledAttention', 'DECOUPLED_ATTENTION_PLUGIN'],
  '@peftjs/hierarchy': ['hierarchyPlugin', 'HIERARCHY_PLUGIN', 'affinityHeatmapPng', 'groupLayers'],
  '@peftjs/hub': ['resolveWeights', 'parseWeightsReference', 'isWeightsReference', 'progressBar'],
  '@peftjs/hub/reference': ['parseWeightsReference', 'isWeightsReference', 'formatWeightsReference'],
  '@peftjs/hub/testing': ['MockHub'],
  '@peftjs/mini-vtab': ['generateTask', 'MINI_VTAB_TASKS'],
  '@peftjs/native': ['loadNativeKernels', 'installNativeMatMul', 'installFusedKernels'],
  '@peftjs/native/kernel-names': ['FUSED_KERNELS'],
  '@peftjs/pml': ['promptMatchingLoss', 'PML_PLUGIN'],
  '@peftjs/prompts': ['shipPrompts', 'SHIP_PROMPTS_PLUGIN'],
  '@peftjs/references': ['knn', 'scratch', 'KNN_METHOD', 'SCRATCH_METHOD', 'REFERENCE_METHODS'],
  '@peftjs/ship': ['ship', 'SHIP_METHOD', 'shipVtabPreset', 'SHIP_PLUGIN_FACTORIES'],
  '@peftjs/train': ['AdamW', 'evaluate', 'createOptimizer', 'train', 'TRAIN_OPTIONS'],
};

/** PEFTJS_NATIVE=off skips the addon build, in the workspace and in the scratch project alike. */
const nativeOff = process.env.PEFTJS_NATIVE === 'off';
const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
/** Test code and test-only helpers; core's public `./testing` entry (src/testing/) is not one of them. */
const TEST_FILE = /(\.test\.[cm]?[jt]sx?|(^|\/)test-(support|helpers)\.[cm]?[jt]s)$/;

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/**
 * The environment for child processes: no NODE_OPTIONS (a `--conditions=@peftjs/source` there would load `src/`)
 * and none of vitest's variables.
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key !== 'NODE_OPTIONS' && !key.startsWith('VITEST')) env[key] = value;
  }
  return env;
}

function run(command: string, args: string[], cwd: string, options: SpawnSyncOptions = {}) {
  const result = spawnSync(command, args, {
    cwd,
    env: childEnv(),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    ...options,
  });
  const stdout = String(result.stdout ?? '');
  const output = `$ ${command} ${args.join(' ')} (in ${cwd})\n${stdout}${String(result.stderr ?? '')}${
    result.error ? `\n${result.error.message}` : ''
  }`;
  return { status: result.status, stdout, output };
}

/** File paths an `exports` entry can resolve to, over all conditions. */
function exportTargets(entry: ExportEntry): string[] {
  if (entry === null) return [];
  if (typeof entry === 'string') return [entry];
  return Object.values(entry).flatMap(exportTargets);
}

/** Files the published package must contain: entry points for Node and for TypeScript, and bins. */
function entryFiles(manifest: Manifest): string[] {
  const bins = typeof manifest.bin === 'string' ? [manifest.bin] : Object.values(manifest.bin ?? {});
  const targets = [
    ...Object.values(manifest.exports ?? {}).flatMap(exportTargets),
    ...(manifest.main ? [manifest.main] : []),
    ...(manifest.types ? [manifest.types] : []),
    ...bins,
  ];
  return [...new Set(targets.map((target) => target.replace(/^\.\//, '')))];
}

function publishablePackages(): { dir: string; manifest: Manifest }[] {
  const packagesDir = join(repoRoot, 'packages');
  return readdirSync(packagesDir)
    .map((name) => join(packagesDir, name))
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => ({ dir, manifest: readJson<Manifest>(join(dir, 'package.json')) }))
    .filter(({ manifest }) => manifest.private !== true);
}

/** Newest modification time of the non-test sources under `dir` (recursive). */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (!TEST_FILE.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** Fails unless `pnpm build` has produced every entry file; says whether a source is newer than the build. */
function requireBuilt(dir: string, manifest: Manifest): { stale: boolean } {
  const entries = entryFiles(manifest).filter((file) => !file.startsWith('src/'));
  const missing = entries.filter((file) => !existsSync(join(dir, file)));
  if (missing.length > 0) {
    throw new Error(
      `${manifest.name}: ${missing.join(', ')} missing — run \`pnpm build\` first (this test packs dist/)`,
    );
  }
  const outputs = entries.filter((file) => file.startsWith('dist/'));
  const built = Math.min(...outputs.map((file) => statSync(join(dir, file)).mtimeMs));
  return { stale: existsSync(join(dir, 'src')) && newestSource(join(dir, 'src')) > built };
}

function isSatisfiedByVersion(range: string, version: string): boolean {
  return range === version || range === `^${version}` || range === `~${version}`;
}

function elapsed(start: number): string {
  return `${((performance.now() - start) / 1000).toFixed(1)} s`;
}

const packages = publishablePackages();
const scratch = mkdtempSync(join(tmpdir(), 'peftjs-packed-'));
const tarballDir = join(scratch, 'tarballs');
const packed: Packed[] = [];

beforeAll(() => {
  expect(packages.length, 'no publishable packages found under packages/').toBeGreaterThan(0);
  const stale = packages.filter(({ dir, manifest }) => requireBuilt(dir, manifest).stale);
  if (stale.length > 0) {
    const names = stale.map(({ manifest }) => manifest.name).join(', ');
    console.warn(`[packed-install] src/ is newer than dist/ in ${names}: the tarballs hold the older build`);
  }
  mkdirSync(tarballDir);
  const start = performance.now();
  for (const { dir, manifest } of packages) {
    const pack = run('pnpm', ['pack', '--pack-destination', tarballDir, '--json'], dir);
    if (pack.status !== 0) throw new Error(`pnpm pack failed for ${manifest.name}:\n${pack.output}`);
    const { filename } = JSON.parse(pack.stdout) as { filename: string };
    const list = run('tar', ['-tzf', filename], tarballDir);
    if (list.status !== 0) throw new Error(`cannot list ${filename}:\n${list.output}`);
    const files = list.stdout
      .split('\n')
      .filter((line) => line !== '' && !line.endsWith('/'))
      .map((line) => line.replace(/^package\//, ''));
    const manifestText = run('tar', ['-xzOf', filename, 'package/package.json'], tarballDir).stdout;
    packed.push({
      dir,
      manifest,
      tarball: filename,
      files,
      packedManifest: JSON.parse(manifestText) as Manifest,
    });
  }
  console.log(`[packed-install] packed ${packed.length} packages in ${elapsed(start)}`);
}, 120_000);

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

describe('packed tarballs', () => {
  it('ship README, dist and every entry point, and no tests or build artefacts', () => {
    for (const { manifest, files } of packed) {
      const name = manifest.name;
      expect(files, `${name}: README.md`).toContain('README.md');
      expect(
        files.some((file) => file.startsWith('dist/')),
        `${name}: dist/`,
      ).toBe(true);
      for (const entry of entryFiles(manifest))
        expect(files, `${name}: entry file ${entry}`).toContain(entry);
      expect(
        files.filter((file) => TEST_FILE.test(file)),
        `${name}: test files in the tarball`,
      ).toEqual([]);
      expect(
        files.filter((file) => file.startsWith('build/') || file.endsWith('.tsbuildinfo')),
        `${name}: build artefacts in the tarball`,
      ).toEqual([]);
    }
  });

  it('have workspace ranges rewritten to the versions being packed', () => {
    const versions = new Map(
      packed.map(({ packedManifest }) => [packedManifest.name, packedManifest.version]),
    );
    for (const { packedManifest } of packed) {
      const name = packedManifest.name;
      expect(JSON.stringify(packedManifest), `${name}: a workspace: range survived packing`).not.toContain(
        'workspace:',
      );
      const fields = [
        packedManifest.dependencies,
        packedManifest.peerDependencies,
        packedManifest.optionalDependencies,
      ];
      for (const [dependency, range] of fields.flatMap((field) => Object.entries(field ?? {}))) {
        if (!dependency.startsWith('@peftjs/')) continue;
        const version = versions.get(dependency);
        expect(version, `${name} depends on ${dependency}, which is not published`).toBeDefined();
        expect(
          isSatisfiedByVersion(range, version ?? ''),
          `${name}: ${dependency}@${range} does not accept ${version}`,
        ).toBe(true);
      }
    }
  });
});

describe('a scratch project with the tarballs', () => {
  const nativeStatusFile = join(scratch, 'node_modules', '@peftjs', 'native', 'build', 'native-build.json');

  it('installs offline from the workspace store', () => {
    const store = run('pnpm', ['store', 'path'], repoRoot);
    expect(store.status, store.output).toBe(0);
    const storeDir = store.stdout.trim();

    const spec = (tarball: string) => `file:tarballs/${basename(tarball)}`;
    const tarballs = Object.fromEntries(
      packed.map(({ manifest, tarball }) => [manifest.name, spec(tarball)]),
    );
    const native = packed.find(({ manifest }) => manifest.name === '@peftjs/native');
    // vitest is the optional peer that @peftjs/core/testing needs; the workspace's version is in the store.
    const vitest = readJson<Manifest>(join(repoRoot, 'package.json')).devDependencies?.vitest;
    expect(native && vitest, '@peftjs/native and the root vitest version').toBeTruthy();
    writeFileSync(
      join(scratch, 'package.json'),
      JSON.stringify({
        name: 'peftjs-packed-install',
        private: true,
        type: 'module',
        dependencies: { ...tarballs, vitest },
      }),
    );
    // pnpm-workspace.yaml: @peftjs/* are not on npm, so the tarballs also stand in for the ranges the packages
    // declare on each other; builds mirror the workspace's allowBuilds (the native addon compiles, tfjs-node never
    // installs: it downloads libtensorflow). Block style, quoted keys: pnpm edits this file in place.
    const block = (entries: Record<string, string | boolean>) =>
      Object.entries(entries)
        .map(([key, value]) => `  ${JSON.stringify(key)}: ${JSON.stringify(value)}\n`)
        .join('');
    writeFileSync(
      join(scratch, 'pnpm-workspace.yaml'),
      `autoInstallPeers: false\noverrides:\n${block(tarballs)}allowBuilds:\n${block({
        [`@peftjs/native@${spec(native?.tarball ?? '')}`]: true,
        sharp: true,
        esbuild: true,
        'core-js': false,
        '@tensorflow/tfjs-node': false,
        '@tensorflow/tfjs-node-gpu': false,
        'msgpackr-extract': false,
      })}`,
    );
    // The workspace lockfile as the starting point: pnpm keeps its versions, which are the ones in the store,
    // instead of the newest in the registry metadata.
    copyFileSync(join(repoRoot, 'pnpm-lock.yaml'), join(scratch, 'pnpm-lock.yaml'));

    const start = performance.now();
    // --no-frozen-lockfile: CI=true would otherwise demand that the copied lockfile already fits.
    const args = ['install', '--no-frozen-lockfile', '--store-dir', storeDir];
    let install = run('pnpm', [...args, '--offline'], scratch);
    if (install.status !== 0 && /NO_OFFLINE|offline mode|package mirror/i.test(install.output)) {
      // A store filled without its registry metadata (e.g. a cleared cache): let pnpm fetch what is missing.
      console.warn(
        `[packed-install] offline install missed the cache; retrying with --prefer-offline\n${install.output}`,
      );
      install = run('pnpm', [...args, '--prefer-offline'], scratch);
    }
    expect(install.status, install.output).toBe(0);
    console.log(`[packed-install] installed ${packed.length} tarballs in ${elapsed(start)}`);

    for (const { packedManifest } of packed) {
      const installed = readJson<Manifest>(
        join(scratch, 'node_modules', packedManifest.name, 'package.json'),
      );
      expect(installed, `${packedManifest.name} installed from its tarball`).toEqual(packedManifest);
    }
    const lockfile = readFileSync(join(scratch, 'pnpm-lock.yaml'), 'utf8');
    expect(lockfile, 'an @peftjs package resolved from the registry, not a tarball').not.toMatch(
      /['\s]@peftjs\/[a-z-]+@\d/,
    );
    const virtualStore = readdirSync(join(scratch, 'node_modules', '.pnpm'));
    expect(virtualStore.filter((entry) => entry.startsWith('@tensorflow+tfjs-node'))).toEqual([]);
    if (!nativeOff) {
      expect(existsSync(nativeStatusFile), '@peftjs/native install script did not run').toBe(true);
    }
  }, 180_000);

  it('imports every exports subpath with plain Node and runs a tiny LoRA ViT', () => {
    copyFileSync(join(repoRoot, 'scripts', 'packed-install-check.mjs'), join(scratch, 'check.mjs'));
    const names = packed.map(({ manifest }) => manifest.name);
    const start = performance.now();
    const check = run(process.execPath, ['check.mjs', JSON.stringify(names)], scratch);
    expect(check.status, check.output).toBe(0);
    console.log(`[packed-install] imported and ran in ${elapsed(start)}`);
    const report = JSON.parse(check.stdout.trim().split('\n').at(-1) ?? '') as CheckReport;

    for (const { manifest } of packed) {
      for (const subpath of Object.keys(manifest.exports ?? {})) {
        const specifier = subpath === '.' ? manifest.name : `${manifest.name}/${subpath.slice(2)}`;
        expect(report.subpaths[specifier], `${specifier} did not load`).toBeDefined();
      }
    }
    for (const [specifier, names] of Object.entries(EXPECTED_EXPORTS)) {
      expect(report.subpaths[specifier], `${specifier} exports`).toEqual(expect.arrayContaining([...names]));
    }

    // tfjs-node is not installed, so auto falls through to wasm, found inside the installed package.
    expect(report.backend).toBe('wasm');
    expect(report.skipped.map((skip) => skip.backend)).toEqual(
      expect.arrayContaining(['tensorflow-gpu', 'tensorflow']),
    );
    expect(report.logitsShape).toEqual([2, 5]);
    expect(report.finite).toBe(true);
    expect(report.trainableWithoutHead).toBeGreaterThan(0);
    expect(report.pngSignature).toEqual(PNG_SIGNATURE);
    // The packed backbone loads a Hub reference through the packed @peftjs/hub; the second load is a cache hit.
    const requestsAfterFirst = report.fromHub[0]?.requests;
    expect(report.fromHub).toEqual([
      { origin: 'hub', dim: 32, requests: requestsAfterFirst },
      { origin: 'cache', dim: 32, requests: requestsAfterFirst },
    ]);
    expect(requestsAfterFirst).toBeGreaterThan(0);
    // zod travels with @peftjs/core: option schemas work from the packed packages.
    expect(report.typoRefusal).toBe('unknown option "lora.rnak" (did you mean "lora.rank"?)');

    // Where the workspace's own addon built, the packed sources must build and load too.
    const workspaceNative = join(repoRoot, 'packages', 'native', 'build', 'native-build.json');
    if (!nativeOff && existsSync(workspaceNative)) {
      if (readJson<{ ok: boolean }>(workspaceNative).ok) {
        const status = readJson<{ ok: boolean; reason: string }>(nativeStatusFile);
        expect(status.reason, 'the packed @peftjs/native did not build').toBe('');
        expect(report.native).toMatchObject({ installed: true });
      }
    }

    const cli = run(join(scratch, 'node_modules', '.bin', 'peft'), ['--help'], scratch);
    expect(cli.status, cli.output).toBe(0);
    expect(cli.stdout).toContain('Commands:');
  }, 90_000);
});
