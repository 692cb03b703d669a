import { PeftError, invalidOption } from '@peftjs/core';

/**
 * Size limits checked before anything is allocated, so that a small or hostile file can never take gigabytes.
 * Each has a default (`DEFAULT_INPUT_LIMITS`) and can be raised per call; docs/guides/limits-and-safety.md lists
 * them with their `peft` config keys.
 */
export interface InputLimits {
  /**
   * Largest image, in pixels (width × height), read from its header before decoding (default 40,000,000).
   * Also the budget of pixels decoded at once across parallel decodes: an image above it decodes alone.
   */
  readonly maxImagePixels: number;
  /** Largest file read whole: an image or a list file, in bytes (default 256 MiB). */
  readonly maxFileBytes: number;
  /** Largest IDX file, in bytes, after gunzip for gzipped files (default 1 GiB). */
  readonly maxIdxBytes: number;
}

/** The default `InputLimits`. */
export const DEFAULT_INPUT_LIMITS: InputLimits = {
  maxImagePixels: 40_000_000,
  maxFileBytes: 256 * 2 ** 20,
  maxIdxBytes: 2 ** 30,
};

/** The `peft` config key that raises each limit, quoted in errors. */
const CLI_KEYS: Record<keyof InputLimits, string> = {
  maxImagePixels: 'data.maxImagePixels',
  maxFileBytes: 'data.maxFileMb',
  maxIdxBytes: 'data.maxIdxMb',
};

/** `DEFAULT_INPUT_LIMITS` overridden by `limits`; each given value must be a positive safe integer. */
export function resolveLimits(limits: Partial<InputLimits> | undefined): InputLimits {
  const resolved = { ...DEFAULT_INPUT_LIMITS, ...limits };
  for (const key of Object.keys(DEFAULT_INPUT_LIMITS) as (keyof InputLimits)[]) {
    const value = resolved[key];
    if (!Number.isSafeInteger(value) || value <= 0) invalidOption(key, value, 'a positive integer');
  }
  return resolved;
}

/** How to raise a limit, for error messages: `raise option "x" (peft: --data.y)`. */
export function howToRaise(limit: keyof InputLimits): string {
  return `raise option "${limit}" (peft: --${CLI_KEYS[limit]})`;
}

/** `12,345,678`: numbers in limit errors are grouped for reading. */
export function grouped(n: number | bigint): string {
  return n.toLocaleString('en-US');
}

/** A `PeftError` (`IO_FAILED`) saying that `what` exceeds `limit`. */
export function limitError(what: string, limit: keyof InputLimits, value: string, max: number): PeftError {
  return new PeftError(
    'IO_FAILED',
    `${what} ${value}, over the limit of ${grouped(max)}; ${howToRaise(limit)} if the file is genuine`,
  );
}
