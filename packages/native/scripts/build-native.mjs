#!/usr/bin/env node
// Install script of @peftjs/native: compiles the optional N-API addon with node-gyp.
// It never fails an install. On success it prints one line saying so; on any failure it prints ONE line with the
// reason, keeps the full compiler output in build/native-build.log, and exits 0 (PEFT.js then uses WebAssembly).
// An addon already built from the same sources for the same Node is kept (pnpm runs this on every install);
// `--force` rebuilds. PEFTJS_NATIVE=off skips the build; PEFTJS_NATIVE_BUILD_VERBOSE=1 streams node-gyp's output.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const buildDir = join(root, 'build');
const addonPath = join(buildDir, 'Release', 'peftjs_native.node');
const statusPath = join(buildDir, 'native-build.json');
const logPath = join(buildDir, 'native-build.log');
const verbose = process.env.PEFTJS_NATIVE_BUILD_VERBOSE === '1';

/** Fingerprint of everything the binary depends on: sources, build file, this script, Node version and arch. */
function sourceFingerprint() {
  const hash = createHash('sha256');
  hash.update(`${process.version} ${process.platform}-${process.arch}\n`);
  for (const file of [
    'binding.gyp',
    'src/kernel_table.h',
    'src/kernels_impl.h',
    'src/vec_avx2.h',
    'src/vec_avx512.h',
    'src/threads.h',
    'src/threads.cc',
    'src/isa_avx2.cc',
    'src/isa_avx512.cc',
    'src/addon.cc',
    'scripts/build-native.mjs',
  ]) {
    hash.update(`${file}\n`);
    hash.update(existsSync(join(root, file)) ? readFileSync(join(root, file)) : 'missing');
  }
  return hash.digest('hex');
}

const fingerprint = sourceFingerprint();

function record(ok, reason, log) {
  try {
    mkdirSync(buildDir, { recursive: true });
    const status = { ok, reason, fingerprint, node: process.version, at: new Date().toISOString() };
    writeFileSync(statusPath, `${JSON.stringify(status)}\n`);
    if (log !== undefined) writeFileSync(logPath, log);
  } catch {
    // A read-only install location: the line on stdout is all we can give.
  }
}

function giveUp(reason, log) {
  record(false, reason, log);
  console.log(`@peftjs/native: native kernels not built (${reason}); PEFT.js will use WebAssembly`);
  process.exit(0);
}

/** node-gyp as [command, ...leading args]: the one npm/pnpm hand to install scripts, a local one, npm's own. */
function findNodeGyp() {
  const viaEnv = process.env.npm_config_node_gyp;
  if (viaEnv && existsSync(viaEnv)) {
    return viaEnv.endsWith('.js') ? [process.execPath, viaEnv] : [viaEnv];
  }
  const require = createRequire(import.meta.url);
  try {
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js')];
  } catch {
    // not installed next to us
  }
  const prefix = dirname(dirname(process.execPath));
  const candidates = [
    join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(prefix, 'lib', 'node_modules', 'pnpm', 'dist', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  for (const candidate of candidates) if (existsSync(candidate)) return [process.execPath, candidate];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'node-gyp'))) return [join(dir, 'node-gyp')];
  }
  return null;
}

/** Node's own headers when they match this Node (distribution packages ship them): no download needed. */
function localHeaders() {
  const prefix = dirname(dirname(process.execPath));
  const versionHeader = join(prefix, 'include', 'node', 'node_version.h');
  if (!existsSync(versionHeader) || !existsSync(join(prefix, 'include', 'node', 'common.gypi'))) return null;
  const text = readFileSync(versionHeader, 'utf8');
  const part = (name) => text.match(new RegExp(`#define NODE_${name}_VERSION (\\d+)`))?.[1];
  const version = `v${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`;
  return version === process.version ? prefix : null;
}

/** The most telling line of a failed build's output: a compiler error, a Python exception, then gyp's own. */
function failureLine(output) {
  const lines = output
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const patterns = [
    /(^|: )(fatal )?error: /i,
    /^[A-Za-z]+(Error|Exception): /,
    /(not found|No such file or directory|command not found)/,
    /^gyp ERR! (stack )?Error:/,
    /^gyp ERR!/,
  ];
  for (const pattern of patterns) {
    const hit = lines.find((line) => pattern.test(line) && !line.startsWith('gyp info'));
    if (hit) return hit.length > 240 ? `${hit.slice(0, 237)}...` : hit;
  }
  return lines.at(-1) ?? 'unknown error';
}

if (process.env.PEFTJS_NATIVE === 'off') {
  console.log('@peftjs/native: build skipped (PEFTJS_NATIVE=off); PEFT.js will use WebAssembly');
  process.exit(0);
}
if (process.arch !== 'x64') giveUp(`needs x86-64 with AVX2/FMA, this is ${process.platform}-${process.arch}`);

if (!process.argv.includes('--force') && existsSync(addonPath)) {
  try {
    const previous = JSON.parse(readFileSync(statusPath, 'utf8'));
    if (previous.ok && previous.fingerprint === fingerprint) {
      console.log('@peftjs/native: native kernels up to date');
      process.exit(0);
    }
  } catch {
    // no usable status: rebuild
  }
}

const nodeGyp = findNodeGyp();
if (!nodeGyp) giveUp('node-gyp not found (it ships with npm)');

const headers = localHeaders();
const args = [...nodeGyp.slice(1), 'rebuild', '--release'];
if (headers) args.push(`--nodedir=${headers}`);
const started = Date.now();
const result = spawnSync(nodeGyp[0], args, {
  cwd: root,
  encoding: 'utf8',
  stdio: verbose ? 'inherit' : 'pipe',
  timeout: 10 * 60 * 1000,
  env: { ...process.env, JOBS: process.env.JOBS ?? '2' },
});
const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
if (result.error) giveUp(`node-gyp could not run: ${result.error.message}`, output);
if (result.status !== 0) giveUp(`node-gyp exited with ${result.status}: ${failureLine(output)}`, output);
if (!existsSync(addonPath))
  giveUp('node-gyp succeeded but build/Release/peftjs_native.node is missing', output);

// Load it once in a child process so a broken binary is reported here, not at the first matmul.
const probe = spawnSync(
  process.execPath,
  [
    '-e',
    `const m = require(${JSON.stringify(addonPath)}); process.stdout.write(JSON.stringify({ supported: m.supported, reason: m.reason, isas: m.isas }))`,
  ],
  { encoding: 'utf8' },
);
let info = null;
try {
  info = JSON.parse(probe.stdout);
} catch {
  // handled below
}
if (probe.status !== 0 || info === null) {
  rmSync(addonPath, { force: true });
  giveUp(
    `the built addon does not load: ${failureLine(`${probe.stdout}${probe.stderr}`)}`,
    `${output}\n${probe.stderr}`,
  );
}
const seconds = ((Date.now() - started) / 1000).toFixed(1);
if (!info.supported) {
  record(false, info.reason, output);
  console.log(`@peftjs/native: built, but unusable here (${info.reason}); PEFT.js will use WebAssembly`);
  process.exit(0);
}
record(true, '', output);
console.log(
  `@peftjs/native: native kernels (${info.isas.join(', ')} usable here) built in ${seconds} s${headers ? ` (headers from ${headers})` : ''}`,
);
