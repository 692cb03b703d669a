import { PeftError } from '@peftjs/core';

/**
 * A parsed weights reference: `hf:<org>/<repo>[@revision][:file]`, or `timm:<model-name>[@revision][:file]` for
 * the repository `timm/<model-name>` on the Hugging Face Hub. Pure (no Node modules), so browser bundles can
 * tell a reference from a path without pulling in the downloader.
 */
export interface WeightsReference {
  /** The prefix as typed: `hf` or `timm`. */
  readonly scheme: 'hf' | 'timm';
  /** Repository id on the Hub, `org/name` (or a legacy `name` without an organisation). */
  readonly repo: string;
  /** Branch, tag or 40-hex commit (default `main`). */
  readonly revision: string;
  /** File inside the repository (default `model.safetensors`). */
  readonly file: string;
}

/** File taken when a reference names none: the safetensors checkpoint timm and transformers publish. */
export const DEFAULT_WEIGHTS_FILE = 'model.safetensors';
/** Revision taken when a reference names none. */
export const DEFAULT_REVISION = 'main';

const SCHEMES = ['hf', 'timm'] as const;
/** A Hub repository name part: letters, digits, `-`, `_`, `.`; no `--` or `..`; at most 96 characters. */
const NAME_PART = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$/;
const COMMIT = /^[0-9a-f]{40}$/;

/** Whether `text` is a Hub reference (`hf:` or `timm:` prefix) rather than a file path. */
export function isWeightsReference(text: string): boolean {
  return SCHEMES.some((scheme) => text.startsWith(`${scheme}:`));
}

/** Whether `revision` is a full commit hash (then the cache needs no ref file to find it). */
export function isCommitHash(revision: string): boolean {
  return COMMIT.test(revision);
}

function invalid(text: string, why: string): never {
  throw new PeftError(
    'HUB_INVALID_REFERENCE',
    `weights reference "${text}": ${why}; expected hf:<org>/<repo>[@revision][:file] or ` +
      'timm:<model-name>[@revision][:file] (e.g. timm:vit_base_patch16_224.augreg2_in21k_ft_in1k)',
  );
}

function checkRepo(text: string, repo: string): void {
  const parts = repo.split('/');
  if (parts.length > 2) invalid(text, `"${repo}" has more than one "/"`);
  for (const part of parts) {
    if (!NAME_PART.test(part) || part.includes('--') || part.includes('..') || part.endsWith('.')) {
      invalid(text, `"${part}" is not a valid Hub repository name`);
    }
  }
}

function checkRevision(text: string, revision: string): void {
  if (revision === '' || /\s|\.\.|^\/|\/$|\\/.test(revision)) invalid(text, `bad revision "${revision}"`);
}

function checkFile(text: string, file: string): void {
  const bad =
    file === '' ||
    file.startsWith('/') ||
    file.includes('\\') ||
    file.split('/').some((segment) => segment === '' || segment === '.' || segment === '..');
  if (bad) invalid(text, `bad file "${file}" (a relative path inside the repository)`);
}

/**
 * Parses a weights reference; `null` when `text` is a file path (no `hf:`/`timm:` prefix). Malformed references
 * throw `HUB_INVALID_REFERENCE` naming the text. A file literally named `hf:…` is reachable as `./hf:…`.
 */
export function parseWeightsReference(text: string): WeightsReference | null {
  const scheme = SCHEMES.find((s) => text.startsWith(`${s}:`));
  if (!scheme) return null;
  const body = text.slice(scheme.length + 1);
  const colon = body.indexOf(':');
  const head = colon >= 0 ? body.slice(0, colon) : body;
  const file = colon >= 0 ? body.slice(colon + 1) : DEFAULT_WEIGHTS_FILE;
  const at = head.indexOf('@');
  const name = at >= 0 ? head.slice(0, at) : head;
  const revision = at >= 0 ? head.slice(at + 1) : DEFAULT_REVISION;
  if (name === '') invalid(text, 'no repository');
  if (scheme === 'timm' && name.includes('/')) {
    invalid(text, 'timm: takes a model name without an organisation (timm:<model-name>)');
  }
  const repo = scheme === 'timm' ? `timm/${name}` : name;
  checkRepo(text, repo);
  checkRevision(text, revision);
  checkFile(text, file);
  return { scheme, repo, revision, file };
}

/** The canonical text of a reference, `hf:org/repo@revision:file`; with `commit`, pinned to that commit. */
export function formatWeightsReference(reference: WeightsReference, commit?: string): string {
  return `hf:${reference.repo}@${commit ?? reference.revision}:${reference.file}`;
}
