/**
 * Adapters without a file system: load from a URL, from `File`/`Blob` objects (a file picker, a drop), and offer
 * the two files for download. Everything goes through `loadAdapterFromBytes` and `serializeAdapter`, so a browser
 * runs exactly the checks `loadAdapter` runs in Node (geometry, base fingerprint, names, shapes, finite values) and
 * writes exactly the files `saveAdapter` writes. Nothing here imports a `node:` module.
 */
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from './adapter-format.js';
import {
  type LoadAdapterOptions,
  type SerializedAdapter,
  loadAdapterFromBytes,
  serializeAdapter,
} from './adapter-files.js';
import type { PeftBackbone } from './backbone-api.js';
import { PeftError } from './errors.js';
import type { PeftModel } from './model.js';

/** Options of `loadAdapterFromUrl`. */
export interface LoadAdapterFromUrlOptions extends LoadAdapterOptions {
  /** The `fetch` to use (default the global one); tests and service workers may pass their own. */
  fetch?: (url: string, init?: { signal?: AbortSignal }) => Promise<Response>;
  /** Aborts both downloads. */
  signal?: AbortSignal;
}

/** The two adapter files as `Blob`s (from a file picker, a drop, or `adapterDownloads`). */
export interface AdapterBlobs {
  /** `adapter_config.json`. */
  config: Blob;
  /** `adapter_model.safetensors`. */
  weights: Blob;
}

/** One file to offer for download: its name and its contents. */
export interface AdapterDownload {
  /** `adapter_config.json` or `adapter_model.safetensors`: keep the names, `loadAdapter` looks for them. */
  name: string;
  /** The file's contents with its MIME type. */
  blob: Blob;
}

/** The folder URL with exactly one trailing slash, so relative file names resolve inside it. */
function folderUrl(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

async function fetchOk(
  url: string,
  fetcher: NonNullable<LoadAdapterFromUrlOptions['fetch']>,
  signal: AbortSignal | undefined,
): Promise<Response> {
  let response: Response;
  try {
    response = await fetcher(url, signal ? { signal } : {});
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new PeftError('IO_FAILED', `cannot fetch ${url}: ${(error as Error).message}`, { cause: error });
  }
  if (!response.ok) {
    throw new PeftError(
      'IO_FAILED',
      `cannot fetch ${url}: HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`,
    );
  }
  return response;
}

/**
 * `loadAdapter` over HTTP: fetches `adapter_config.json` and `adapter_model.safetensors` from the folder at `url`
 * (relative URLs resolve against the page) and rebuilds the model on `base` with every check `loadAdapter` makes.
 * A missing file or an HTTP error is an `IO_FAILED` error naming the URL.
 */
export async function loadAdapterFromUrl(
  base: PeftBackbone,
  url: string,
  options: LoadAdapterFromUrlOptions,
): Promise<PeftModel> {
  const fetcher = options.fetch ?? ((u: string, init?: { signal?: AbortSignal }) => fetch(u, init));
  const dir = folderUrl(url);
  const [configResponse, weightsResponse] = await Promise.all([
    fetchOk(dir + ADAPTER_CONFIG_FILE, fetcher, options.signal),
    fetchOk(dir + ADAPTER_WEIGHTS_FILE, fetcher, options.signal),
  ]);
  const configText = await configResponse.text();
  const weights = new Uint8Array(await weightsResponse.arrayBuffer());
  return loadAdapterFromBytes(base, configText, weights, { ...options, source: dir });
}

/**
 * `loadAdapter` from the two files as `Blob`s; `source` names them in errors (default `adapter`).
 */
export async function loadAdapterFromBlobs(
  base: PeftBackbone,
  blobs: AdapterBlobs,
  options: LoadAdapterOptions & { source?: string },
): Promise<PeftModel> {
  const configText = await blobs.config.text();
  const weights = new Uint8Array(await blobs.weights.arrayBuffer());
  return loadAdapterFromBytes(base, configText, weights, options);
}

/**
 * Finds the adapter's two files among files a user picked or dropped: by their own names, else — when a browser
 * renamed a download (`adapter_config (1).json`) — the only `.json` and the only `.safetensors` file. Anything
 * else (a file missing, two candidates) is an `IO_FAILED` error listing the files given.
 */
export function pickAdapterFiles(files: Iterable<File>): AdapterBlobs {
  const list = [...files];
  const names = list.map((f) => f.name).join(', ') || 'none';
  const find = (exact: string, extension: string): File => {
    const named = list.filter((f) => f.name === exact);
    const candidates =
      named.length > 0 ? named : list.filter((f) => f.name.toLowerCase().endsWith(extension));
    if (candidates.length !== 1) {
      throw new PeftError(
        'IO_FAILED',
        `${candidates.length === 0 ? 'no' : 'more than one'} ${exact} (or single *${extension} file) among ` +
          `the files given (${names}); choose ${ADAPTER_CONFIG_FILE} and ${ADAPTER_WEIGHTS_FILE} together`,
      );
    }
    return candidates[0] as File;
  };
  return { config: find(ADAPTER_CONFIG_FILE, '.json'), weights: find(ADAPTER_WEIGHTS_FILE, '.safetensors') };
}

/** `loadAdapter` from files a user picked or dropped (see `pickAdapterFiles` for how they are found). */
export async function loadAdapterFromFiles(
  base: PeftBackbone,
  files: Iterable<File>,
  options: LoadAdapterOptions,
): Promise<PeftModel> {
  const picked = pickAdapterFiles(files);
  const source = `${(picked.config as File).name} + ${(picked.weights as File).name}`;
  return loadAdapterFromBlobs(base, picked, { ...options, source });
}

/**
 * The adapter of `model` (or one already serialized) as the two files `saveAdapter` writes, ready to offer for
 * download (`URL.createObjectURL(blob)` with the `download` attribute set to `name`). Saved side by side in one
 * folder they are an adapter directory: `loadAdapter` and `peft eval --adapter <folder>` read it in Node.
 */
export function adapterDownloads(source: PeftModel | SerializedAdapter): AdapterDownload[] {
  const serialized = 'configText' in source ? source : serializeAdapter(source);
  // A copy into a fresh ArrayBuffer: Blob parts must not be views of shared or resizable memory.
  const weights = new Uint8Array(serialized.weights.byteLength);
  weights.set(serialized.weights);
  return [
    { name: ADAPTER_CONFIG_FILE, blob: new Blob([serialized.configText], { type: 'application/json' }) },
    { name: ADAPTER_WEIGHTS_FILE, blob: new Blob([weights], { type: 'application/octet-stream' }) },
  ];
}
