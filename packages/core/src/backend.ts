import { PeftError, invalidOption } from './errors.js';
import { installFastMatMulGradient } from './ops.js';
import { tf } from './tf.js';

/**
 * Which engine runs the tensors. `auto` tries the fastest one that loads: libtensorflow with CUDA
 * (`@tensorflow/tfjs-node-gpu`), libtensorflow on CPU (`@tensorflow/tfjs-node`), WebAssembly (bundled, offline),
 * then pure JavaScript.
 */
export type BackendPreference = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export type ConcreteBackend = Exclude<BackendPreference, 'auto'>;

export const BACKEND_PREFERENCES: readonly BackendPreference[] = [
  'auto',
  'tensorflow-gpu',
  'tensorflow',
  'wasm',
  'cpu',
];
const AUTO_ORDER: readonly ConcreteBackend[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export interface BackendChoice {
  /** What was asked for (after reading `PEFTJS_BACKEND`). */
  readonly requested: BackendPreference;
  /** The PEFT.js name of the backend in use. */
  readonly backend: ConcreteBackend;
  /** The tfjs engine's own name for it (`tensorflow`, `wasm`, `cpu`). */
  readonly tfBackend: string;
  /** Backends tried before the chosen one, each with the reason it was skipped. */
  readonly skipped: readonly { backend: ConcreteBackend; reason: string }[];
  /** Where the choice came from. */
  readonly source: 'option' | 'env' | 'default';
  /**
   * The native AVX2/FMA matmul (`@peftjs/native`) replacing tfjs's on the wasm and cpu backends: `isa` when
   * installed, otherwise the reason it is not (not built, CPU without AVX2, `PEFTJS_NATIVE=off`, other backend).
   */
  readonly native:
    | { readonly installed: true; readonly isa: string }
    | { readonly installed: false; readonly reason: string };
}

export interface InitBackendOptions {
  prefer?: BackendPreference;
  /** Receives one line describing the choice. Default: stderr, unless `PEFTJS_LOG=silent`. `false` silences. */
  log?: ((line: string) => void) | false;
  /** Module loader; tests replace it to simulate packages that are missing or fail to load. */
  importModule?: (specifier: string) => Promise<unknown>;
  /** Environment to read `PEFTJS_BACKEND` from (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Keep tfjs debug checks and its console notices (default false: tfjs runs with its `PROD` flag). */
  debug?: boolean;
  /** Where the tfjs-backend-wasm `.wasm` files are served (browsers); Node finds the installed package itself. */
  wasmPaths?: string;
}

const defaultImport = (specifier: string): Promise<unknown> => import(specifier);

interface NativeModule {
  loadNativeKernels(
    env?: Record<string, string | undefined>,
  ): { ok: true; isa: string } | { ok: false; reason: string };
  installNativeMatMul(backend: 'wasm' | 'cpu'): boolean;
}

/**
 * Puts the native matmul under the wasm or cpu backend when it loads. Imported lazily: browsers and machines
 * where the addon did not build simply keep tfjs's kernels, and the reason is reported.
 */
async function installNative(
  backend: ConcreteBackend,
  env: Record<string, string | undefined>,
  importModule: (specifier: string) => Promise<unknown>,
): Promise<BackendChoice['native']> {
  if (backend !== 'wasm' && backend !== 'cpu')
    return { installed: false, reason: `not used with the ${backend} backend` };
  let native: NativeModule;
  try {
    native = (await importModule('@peftjs/native')) as NativeModule;
  } catch (error) {
    return { installed: false, reason: `@peftjs/native did not load: ${messageOf(error)}` };
  }
  const status = native.loadNativeKernels(env);
  if (!status.ok) return { installed: false, reason: status.reason };
  if (!native.installNativeMatMul(backend))
    return { installed: false, reason: `could not register the kernel on ${backend}` };
  return { installed: true, isa: status.isa };
}

function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}

interface WasmModule {
  setWasmPaths: (prefixOrFileMap: string) => void;
}

function isWasmModule(value: unknown): value is WasmModule {
  return (
    typeof value === 'object' && value !== null && typeof (value as WasmModule).setWasmPaths === 'function'
  );
}

/** The folder holding the .wasm binaries of the installed tfjs-backend-wasm package (Node; no network needed). */
export async function wasmBinaryDirectory(): Promise<string> {
  const { createRequire } = await import('node:module');
  const { dirname, join } = await import('node:path');
  const require = createRequire(import.meta.url);
  return `${join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist')}/`;
}

let wasmPathsSet = false;

async function activate(
  backend: ConcreteBackend,
  importModule: (specifier: string) => Promise<unknown>,
  wasmPaths?: string,
): Promise<string> {
  switch (backend) {
    case 'tensorflow-gpu':
    case 'tensorflow': {
      const specifier = backend === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
      await importModule(specifier);
      if (!tf.findBackend('tensorflow'))
        throw new Error(`${specifier} loaded but registered no "tensorflow" backend`);
      if (!(await tf.setBackend('tensorflow'))) throw new Error('tf.setBackend("tensorflow") failed');
      return 'tensorflow';
    }
    case 'wasm': {
      const wasm = await importModule('@tensorflow/tfjs-backend-wasm');
      if (!isWasmModule(wasm)) throw new Error('@tensorflow/tfjs-backend-wasm has no setWasmPaths export');
      if (!wasmPathsSet) {
        wasm.setWasmPaths(wasmPaths ?? (await wasmBinaryDirectory()));
        wasmPathsSet = true;
      }
      if (!(await tf.setBackend('wasm')))
        throw new Error('tf.setBackend("wasm") failed to initialise WebAssembly');
      return 'wasm';
    }
    case 'cpu': {
      if (!(await tf.setBackend('cpu'))) throw new Error('tf.setBackend("cpu") failed');
      return 'cpu';
    }
  }
}

function isPreference(value: string): value is BackendPreference {
  return (BACKEND_PREFERENCES as readonly string[]).includes(value);
}

let current: BackendChoice | null = null;

/**
 * Selects and initialises the tfjs backend. With `auto` (the default) backends are tried in the order
 * tensorflow-gpu → tensorflow → wasm → cpu and the first that loads wins; every skipped one is reported with its
 * reason. An explicit preference that cannot load is an error. `PEFTJS_BACKEND` sets the preference when the
 * option is absent.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendChoice> {
  const env = options.env ?? process.env;
  const importModule = options.importModule ?? defaultImport;
  let requested: BackendPreference = 'auto';
  let source: BackendChoice['source'] = 'default';
  if (options.prefer !== undefined) {
    if (!isPreference(options.prefer))
      invalidOption('prefer', options.prefer, `one of ${BACKEND_PREFERENCES.join(', ')}`);
    requested = options.prefer;
    source = 'option';
  } else if (env.PEFTJS_BACKEND) {
    const fromEnv = env.PEFTJS_BACKEND.trim();
    if (!isPreference(fromEnv)) {
      invalidOption(
        'PEFTJS_BACKEND (environment variable)',
        fromEnv,
        `one of ${BACKEND_PREFERENCES.join(', ')}`,
      );
    }
    requested = fromEnv;
    source = 'env';
  }

  // PROD skips tfjs's per-op debug checks and its "install tfjs-node" console notice.
  tf.env().set('PROD', !options.debug);
  const candidates = requested === 'auto' ? AUTO_ORDER : [requested];
  const skipped: { backend: ConcreteBackend; reason: string }[] = [];
  for (const backend of candidates) {
    try {
      const tfBackend = await activate(backend, importModule, options.wasmPaths);
      await tf.ready();
      installFastMatMulGradient();
      const native = await installNative(backend, env, importModule);
      const choice: BackendChoice = { requested, backend, tfBackend, skipped, source, native };
      current = choice;
      emit(options.log, env, describeChoice(choice));
      return choice;
    } catch (error) {
      if (requested !== 'auto') {
        throw new PeftError(
          'BACKEND_UNAVAILABLE',
          `backend "${backend}" was requested (${source === 'env' ? 'PEFTJS_BACKEND' : 'option "prefer"'}) ` +
            `but cannot load: ${messageOf(error)}`,
          { cause: error },
        );
      }
      skipped.push({ backend, reason: messageOf(error) });
    }
  }
  throw new PeftError(
    'BACKEND_UNAVAILABLE',
    `no tfjs backend could load: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`,
  );
}

/** The last choice made by `initBackend`, or null before the first call. */
export function currentBackend(): BackendChoice | null {
  return current;
}

export function describeChoice(choice: BackendChoice): string {
  const skipped = choice.skipped.map((s) => `${s.backend} skipped: ${s.reason}`).join('; ');
  const native = choice.native.installed
    ? ` + native ${choice.native.isa} matmul`
    : choice.backend === 'wasm' || choice.backend === 'cpu'
      ? ` (native matmul unavailable: ${choice.native.reason})`
      : '';
  return `[peftjs] backend ${choice.backend}${native} (requested ${choice.requested} via ${choice.source})${skipped ? `; ${skipped}` : ''}`;
}

function emit(log: InitBackendOptions['log'], env: Record<string, string | undefined>, line: string): void {
  if (log === false) return;
  if (log) {
    log(line);
    return;
  }
  if (env.PEFTJS_LOG === 'silent') return;
  process.stderr.write(`${line}\n`);
}

/** Names of the backends that can load on this machine, probed once (used by the test matrix). */
export async function availableBackends(
  options: Pick<InitBackendOptions, 'importModule'> = {},
): Promise<ConcreteBackend[]> {
  const importModule = options.importModule ?? defaultImport;
  const previous = tf.getBackend();
  const found: ConcreteBackend[] = [];
  for (const backend of AUTO_ORDER) {
    try {
      await activate(backend, importModule);
      await tf.ready();
      found.push(backend);
    } catch {
      // A backend that cannot load is simply absent from the matrix.
    }
  }
  if (previous) await tf.setBackend(previous);
  return found;
}
