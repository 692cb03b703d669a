/**
 * Every failure PEFT.js raises on purpose is a `PeftError`: one message that names the file, line, tensor, option,
 * plugin or hook at fault, plus a stable `code` that programs can branch on.
 */
export type PeftErrorCode =
  | 'BACKEND_UNAVAILABLE'
  | 'INVALID_OPTION'
  | 'INVALID_CONFIG'
  | 'SAFETENSORS_INVALID'
  | 'NPZ_INVALID'
  | 'WEIGHTS_MISMATCH'
  | 'PLUGIN_INVALID'
  | 'PLUGIN_CONFLICT'
  | 'HOOK_FAILED'
  | 'MODEL_FROZEN'
  | 'PARAMETER_INVALID'
  | 'SHAPE_MISMATCH'
  | 'IO_FAILED'
  | 'NON_FINITE_LOSS'
  | 'CHECKPOINT_INVALID'
  | 'BASE_READ_ONLY'
  | 'FOLDER_LOCKED'
  | 'HUB_INVALID_REFERENCE'
  | 'HUB_NOT_FOUND'
  | 'HUB_ACCESS_DENIED'
  | 'HUB_OFFLINE_MISS'
  | 'HUB_REQUEST_FAILED'
  | 'CHECKSUM_MISMATCH'
  | 'DISK_FULL';

/**
 * The error PEFT.js throws for every failure it detects: a message naming what is at fault plus a stable
 * `code`.
 */
export class PeftError extends Error {
  /** Stable category of the failure, for programs to branch on (the message is for people). */
  readonly code: PeftErrorCode;

  constructor(code: PeftErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PeftError';
    this.code = code;
  }
}

/** Throws `INVALID_OPTION` naming the option, the value received and what was expected. */
export function invalidOption(option: string, value: unknown, expected: string): never {
  throw new PeftError(
    'INVALID_OPTION',
    `option "${option}" must be ${expected}; got ${describeValue(value)}`,
  );
}

/**
 * Short description of a value for error messages: strings quoted, numbers, booleans, null and undefined as
 * written, arrays by length, anything else by type (`an object`, `a function`).
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    return String(value);
  }
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  const type = typeof value;
  return `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
}

/** Validates a positive integer option, naming it on failure. */
export function requirePositiveInt(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    invalidOption(option, value, 'a positive integer');
  }
  return value;
}

/** Validates a finite number in [min, max], naming the option on failure. */
export function requireNumberInRange(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    invalidOption(option, value, `a number in [${min}, ${max}]`);
  }
  return value;
}
