/**
 * What browser bundles get for `@peftjs/hub` (the `browser` export condition): references parse and configs read
 * as in Node, but resolving needs a file system for the cache, so `resolveWeights` and `hubSettings` throw. In a
 * browser, fetch the weights file yourself and call `loadVitFromBytes`.
 */
import { PeftError } from '@peftjs/core';

export * from './reference.js';
export { CONFIG_FILE, parsePretrainedConfig } from './pretrained.js';
export { progressBar } from './progress.js';

function nodeOnly(what: string): never {
  throw new PeftError(
    'HUB_REQUEST_FAILED',
    `${what} needs Node (the Hugging Face cache is a folder on disk); in a browser, fetch the weights file and ` +
      'load it with loadVitFromBytes',
  );
}

/** Node only: throws in browsers. */
export async function resolveWeights(reference: string): Promise<never> {
  return nodeOnly(`resolveWeights("${reference}")`);
}

/** Node only: throws in browsers. */
export async function hubSettings(): Promise<never> {
  return nodeOnly('hubSettings()');
}
