import { PeftError } from '@peftjs/core';

/**
 * Checks that `matrix` is a non-empty square matrix of finite numbers and returns its size. `label` names the
 * argument in error messages (e.g. "affinity").
 */
export function requireSquareMatrix(label: string, matrix: unknown): number {
  if (!Array.isArray(matrix) || matrix.length === 0) {
    throw new PeftError('INVALID_OPTION', `${label} must be a non-empty square matrix (number[][])`);
  }
  const size = matrix.length;
  for (let i = 0; i < size; i++) {
    const row: unknown = matrix[i];
    if (!Array.isArray(row) || row.length !== size) {
      const got = Array.isArray(row) ? `${row.length} columns` : typeof row;
      throw new PeftError(
        'SHAPE_MISMATCH',
        `${label} must be square (${size}×${size}): row ${i} has ${got}, expected ${size} columns`,
      );
    }
    for (let j = 0; j < size; j++) {
      const value: unknown = row[j];
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new PeftError(
          'INVALID_OPTION',
          `${label}[${i}][${j}] (row ${i}, column ${j}) must be a finite number; got ${String(value)}`,
        );
      }
    }
  }
  return size;
}

/**
 * Checks a hierarchy start list: integers, first 0, strictly increasing, all below `depth`. `label` names the
 * argument in error messages.
 */
export function requireStarts(label: string, starts: unknown, depth: number): number[] {
  if (!Array.isArray(starts) || starts.length === 0) {
    throw new PeftError('INVALID_CONFIG', `${label} must be a non-empty array of layer indices`);
  }
  const out: number[] = [];
  for (let i = 0; i < starts.length; i++) {
    const s: unknown = starts[i];
    if (typeof s !== 'number' || !Number.isInteger(s)) {
      throw new PeftError('INVALID_CONFIG', `${label}[${i}] must be an integer; got ${String(s)}`);
    }
    if (i === 0 && s !== 0) {
      throw new PeftError(
        'INVALID_CONFIG',
        `${label}[0] must be 0 (the first hierarchy starts at layer 0); got ${s}`,
      );
    }
    const prev = out[i - 1];
    if (prev !== undefined && s <= prev) {
      throw new PeftError(
        'INVALID_CONFIG',
        `${label} must be strictly increasing: ${label}[${i}] = ${s} follows ${prev}`,
      );
    }
    if (s >= depth) {
      throw new PeftError('INVALID_CONFIG', `${label}[${i}] = ${s} is not a layer of a ${depth}-block model`);
    }
    out.push(s);
  }
  return out;
}
