import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { HUB_URL, getHFHubCachePath } from '@huggingface/hub';
import type { HubProgressSink } from './progress.js';

/** Options of `resolveWeights`; each falls back to the environment variable Python's `huggingface_hub` reads. */
export interface HubOptions {
  /** Hub (or mirror) base URL; default `HF_ENDPOINT`, else `https://huggingface.co`. */
  endpoint?: string;
  /** Cache root; default `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`. */
  cacheDir?: string;
  /**
   * Access token for gated or private repositories; default `HF_TOKEN`, else the file `HF_TOKEN_PATH` or
   * `HF_HOME/token` that `huggingface-cli login` writes. Sent only to the endpoint's origin, never logged.
   */
  token?: string;
  /** Use the cache only (default: `HF_HUB_OFFLINE` set to 1/true/yes/on). */
  offline?: boolean;
  /**
   * Ask the Hub which commit a branch or tag points at even when the cache already has it (default false: a
   * cached reference is used with no request at all).
   */
  refresh?: boolean;
  /**
   * Download progress: `true` draws a bar on stderr (lines when stderr is not a terminal), `false` is silent,
   * a function receives the events; default `'auto'`, a bar only when stderr is a terminal.
   */
  progress?: boolean | 'auto' | HubProgressSink;
  /** Attempts of one download, resuming with an HTTP Range request after each interruption (default 4). */
  attempts?: number;
  /** A lock older than this is taken over (its holder died), in ms (default 30000). */
  lockStaleMs?: number;
}

/** The settings one resolution runs with. */
export interface HubSettings {
  /** Base URL without a trailing slash. */
  readonly endpoint: string;
  /** Cache root (the folder holding `models--org--name/`). */
  readonly cacheDir: string;
  /** The token, when one was given or found. */
  readonly token: string | undefined;
  /** Cache only. */
  readonly offline: boolean;
}

const TRUE_VALUES = new Set(['1', 'on', 'yes', 'true']);

function envFlag(name: string): boolean {
  return TRUE_VALUES.has((process.env[name] ?? '').trim().toLowerCase());
}

function hfHome(): string {
  return process.env.HF_HOME ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
}

async function tokenFromEnvironment(): Promise<string | undefined> {
  const fromEnv = process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN;
  if (fromEnv?.trim()) return fromEnv.trim();
  const path = process.env.HF_TOKEN_PATH ?? join(hfHome(), 'token');
  try {
    const text = (await readFile(path, 'utf8')).trim();
    return text === '' ? undefined : text;
  } catch {
    // No token file is the common case: anonymous access.
    return undefined;
  }
}

/** Options merged over the environment (`HF_ENDPOINT`, `HF_HUB_CACHE`/`HF_HOME`, `HF_TOKEN`, `HF_HUB_OFFLINE`). */
export async function hubSettings(options: HubOptions = {}): Promise<HubSettings> {
  const endpoint = (options.endpoint ?? process.env.HF_ENDPOINT ?? HUB_URL).replace(/\/+$/, '');
  return {
    endpoint,
    cacheDir: options.cacheDir ?? getHFHubCachePath(),
    token: options.token ?? (await tokenFromEnvironment()),
    offline: options.offline ?? envFlag('HF_HUB_OFFLINE'),
  };
}
