import { PeftError, invalidOption } from './errors.js';
import { installFastMatMulGradient } from './ops.js';
import { tf } from './tf.js';
import { installWasmCopyFreeKernels } from './wasm-kernels.js';

/**
 * Which engine runs the tensors. `auto` tries the fastest one that loads: libtensorflow with CUDA
 * (`@tensorflow/tfjs-node-gpu`), WebGPU on a hardware adapter (`@tensorflow/tfjs-backend-webgpu`; in Node through
 * the `webgpu` package's Dawn build), libtensorflow on CPU (`@tensorflow/tfjs-node`), WebAssembly (bundled,
 * offline), then pure JavaScript.
 */
export type BackendPreference = 'auto' | 'tensorflow-gpu' | 'webgpu' | 'tensorflow' | 'wasm' | 'cpu';
/** A backend that actually runs: every `BackendPreference` except `auto`. */
export type ConcreteBackend = Exclude<BackendPreference, 'auto'>;

/** Every accepted value of `InitBackendOptions.prefer` and `PEFTJS_BACKEND`. */
export const BACKEND_PREFERENCES = [
  'auto',
  'tensorflow-gpu',
  'webgpu',
  'tensorflow',
  'wasm',
  'cpu',
] as const satisfies readonly BackendPreference[];
const AUTO_ORDER: readonly ConcreteBackend[] = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

/** What `initBackend` selected, and why. */
export interface BackendChoice {
  /** What was asked for (after reading `PEFTJS_BACKEND`). */
  readonly requested: BackendPreference;
  /** The PEFT.js name of the backend in use. */
  readonly backend: ConcreteBackend;
  /** The tfjs engine's own name for it (`tensorflow`, `webgpu`, `wasm`, `cpu`). */
  readonly tfBackend: string;
  /** The GPU adapter behind the `webgpu` backend (vendor, architecture, device, description as reported). */
  readonly adapter?: string;
  /** Backends tried before the chosen one, each with the reason it was skipped. */
  readonly skipped: readonly {
    /** The backend that was tried. */
    backend: ConcreteBackend;
    /** First line of the error it failed with. */
    reason: string;
  }[];
  /** Where the choice came from. */
  readonly source: 'option' | 'env' | 'default';
  /**
   * The native kernels (`@peftjs/native`: matmul, linear layers, GELU, LayerNorm, softmax) replacing tfjs's on the
   * wasm and cpu backends: the instruction set they run when installed, otherwise the reason they are not (not
   * built, CPU without AVX2, `PEFTJS_NATIVE=off`, other backend).
   */
  readonly native:
    | {
        /** The native kernels are in use. */
        readonly installed: true;
        /**
         * Instruction set of the kernels, chosen once per process: `avx512` (AVX-512F/BW/VL/DQ) where the CPU and
         * OS support it, else `avx2` (AVX2 + FMA); `PEFTJS_NATIVE_ISA=avx2` forces the AVX2 kernels.
         */
        readonly isa: string;
        /** Why that instruction set (the best the CPU runs, forced, or why a request was not honoured). */
        readonly isaReason: string;
        /** The CPU's model name as CPUID reports it. */
        readonly cpu: string;
      }
    | {
        /** tfjs's own matmul is in use. */
        readonly installed: false;
        /** Why the native matmul is not installed. */
        readonly reason: string;
      };
}

/** Options of `initBackend`. */
export interface InitBackendOptions {
  /**
   * Backend to use (default: `PEFTJS_BACKEND`, else `auto`). An explicit backend that cannot load throws
   * `BACKEND_UNAVAILABLE`; a value outside `BACKEND_PREFERENCES` throws `INVALID_OPTION`.
   */
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

// Optional backends are resolved at run time by name; the comment keeps bundlers (Vite) from warning about it.
const defaultImport = (specifier: string): Promise<unknown> => import(/* @vite-ignore */ specifier);

interface NativeModule {
  loadNativeKernels(
    env?: Record<string, string | undefined>,
  ): { ok: true; isa: string; isaReason: string; cpu: string } | { ok: false; reason: string };
  installNativeMatMul(backend: 'wasm' | 'cpu'): boolean;
  installFusedKernels(backend: 'wasm' | 'cpu'): boolean;
  installNativeElementwise(backend: 'wasm' | 'cpu'): boolean;
}

/**
 * Puts the native matmul, the fused kernels (linear, GELU, LayerNorm, softmax) and the native element-wise and
 * transpose kernels under the wasm or cpu backend when they load.
 * Imported lazily: browsers and machines where the addon did not build simply keep tfjs's kernels, and the reason
 * is reported.
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
  if (
    !native.installNativeMatMul(backend) ||
    !native.installFusedKernels(backend) ||
    !native.installNativeElementwise(backend)
  )
    return { installed: false, reason: `could not register the kernels on ${backend}` };
  return { installed: true, isa: status.isa, isaReason: status.isaReason, cpu: status.cpu };
}

/** Accepted values of `PEFTJS_NATIVE_ISA` (the native kernels' instruction set). */
const NATIVE_ISA_VALUES = ['auto', 'avx2', 'avx512'];

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

/** The parts of the WebGPU API `initBackend` reads (the DOM typings are not in a Node build). */
interface GpuAdapterLike {
  readonly isFallbackAdapter?: boolean;
  readonly info?: GpuAdapterInfoLike;
  requestAdapterInfo?: () => Promise<GpuAdapterInfoLike>;
}
interface GpuAdapterInfoLike {
  readonly vendor?: string;
  readonly architecture?: string;
  readonly device?: string;
  readonly description?: string;
  readonly isFallbackAdapter?: boolean;
}
interface GpuLike {
  requestAdapter(options?: {
    powerPreference?: 'high-performance' | 'low-power';
  }): Promise<GpuAdapterLike | null>;
}
/** The `webgpu` npm package: Dawn for Node, `create(flags)` returns a `navigator.gpu`; `globals` holds the enums. */
interface DawnModule {
  create(flags: string[]): GpuLike;
  globals?: Record<string, unknown>;
}

function isDawnModule(value: unknown): value is DawnModule {
  return typeof value === 'object' && value !== null && typeof (value as DawnModule).create === 'function';
}

/**
 * Finds a hardware WebGPU adapter: the browser's `navigator.gpu`, or in Node the `webgpu` package (Dawn), which
 * needs a Vulkan loader and a GPU driver. Software adapters (SwiftShader, llvmpipe) are refused: measured here
 * they run 13–18× slower than wasm, so picking one would silently make training slower, not faster.
 */
async function webGpuAdapter(importModule: (specifier: string) => Promise<unknown>): Promise<string> {
  const scope = globalThis as { navigator?: { gpu?: GpuLike } };
  if (!scope.navigator?.gpu) {
    const dawn = await importModule('webgpu');
    if (!isDawnModule(dawn)) throw new Error('the "webgpu" package has no create() export');
    // tfjs-backend-webgpu reads navigator.gpu and the GPUBufferUsage/GPUMapMode/... enums from the global scope.
    if (dawn.globals) Object.assign(globalThis, dawn.globals);
    const gpu = dawn.create([]);
    if (scope.navigator) Object.defineProperty(scope.navigator, 'gpu', { value: gpu, configurable: true });
    else
      Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
  const gpu = scope.navigator?.gpu as GpuLike;
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter)
    throw new Error('no WebGPU adapter (needs a GPU, its driver and, in Node, the Vulkan loader)');
  const info = adapter.info ?? (await adapter.requestAdapterInfo?.()) ?? {};
  const name =
    [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unnamed';
  if (adapter.isFallbackAdapter || info.isFallbackAdapter)
    throw new Error(
      `only a software WebGPU adapter is available (${name}); refused because it is slower than wasm`,
    );
  return name;
}

async function activate(
  backend: ConcreteBackend,
  importModule: (specifier: string) => Promise<unknown>,
  wasmPaths?: string,
): Promise<{ tfBackend: string; adapter?: string }> {
  switch (backend) {
    case 'tensorflow-gpu':
    case 'tensorflow': {
      const specifier = backend === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
      await importModule(specifier);
      if (!tf.findBackend('tensorflow'))
        throw new Error(`${specifier} loaded but registered no "tensorflow" backend`);
      if (!(await tf.setBackend('tensorflow'))) throw new Error('tf.setBackend("tensorflow") failed');
      return { tfBackend: 'tensorflow' };
    }
    case 'webgpu': {
      const adapter = await webGpuAdapter(importModule);
      await importModule('@tensorflow/tfjs-backend-webgpu');
      if (!tf.findBackend('webgpu'))
        throw new Error('@tensorflow/tfjs-backend-webgpu loaded but registered no "webgpu" backend');
      if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") failed');
      return { tfBackend: 'webgpu', adapter };
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
      if (!installWasmCopyFreeKernels())
        throw new Error('tfjs-backend-wasm registered no Identity/Slice/SplitV kernel to replace');
      return { tfBackend: 'wasm' };
    }
    case 'cpu': {
      if (!(await tf.setBackend('cpu'))) throw new Error('tf.setBackend("cpu") failed');
      return { tfBackend: 'cpu' };
    }
  }
}

function isPreference(value: string): value is BackendPreference {
  return (BACKEND_PREFERENCES as readonly string[]).includes(value);
}

let current: BackendChoice | null = null;

/**
 * Selects and initialises the tfjs backend. With `auto` (the default) backends are tried in the order
 * tensorflow-gpu → webgpu (hardware adapters only) → tensorflow → wasm → cpu and the first that loads wins; every skipped one is reported with its
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

  const isaRequest = env.PEFTJS_NATIVE_ISA?.trim().toLowerCase();
  if (isaRequest && !NATIVE_ISA_VALUES.includes(isaRequest))
    invalidOption(
      'PEFTJS_NATIVE_ISA (environment variable)',
      env.PEFTJS_NATIVE_ISA,
      `one of ${NATIVE_ISA_VALUES.join(', ')}`,
    );

  // PROD skips tfjs's per-op debug checks and its "install tfjs-node" console notice.
  tf.env().set('PROD', !options.debug);
  const candidates = requested === 'auto' ? AUTO_ORDER : [requested];
  const skipped: { backend: ConcreteBackend; reason: string }[] = [];
  for (const backend of candidates) {
    try {
      const { tfBackend, adapter } = await activate(backend, importModule, options.wasmPaths);
      await tf.ready();
      installFastMatMulGradient();
      const native = await installNative(backend, env, importModule);
      const choice: BackendChoice = {
        requested,
        backend,
        tfBackend,
        skipped,
        source,
        native,
        ...(adapter !== undefined ? { adapter } : {}),
      };
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

/**
 * The one-line summary `initBackend` logs: backend, native matmul status, what was requested and from where,
 * and every skipped backend with its reason.
 */
export function describeChoice(choice: BackendChoice): string {
  const skipped = choice.skipped.map((s) => `${s.backend} skipped: ${s.reason}`).join('; ');
  const native = choice.native.installed
    ? ` + native ${choice.native.isa} kernels (${choice.native.isaReason}; ${choice.native.cpu})`
    : choice.backend === 'wasm' || choice.backend === 'cpu'
      ? ` (native matmul unavailable: ${choice.native.reason})`
      : '';
  const adapter = choice.adapter !== undefined ? ` on ${choice.adapter}` : '';
  return `[peftjs] backend ${choice.backend}${adapter}${native} (requested ${choice.requested} via ${choice.source})${skipped ? `; ${skipped}` : ''}`;
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
