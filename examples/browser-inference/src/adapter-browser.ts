/**
 * Adapter loading in the page: fetch `adapter_config.json` and `adapter_model.safetensors` over HTTP and hand them to
 * core's `loadAdapterFromBytes` — the same code `loadAdapter` runs in Node (plugins rebuilt from their saved options,
 * artifacts restored, fingerprint and every tensor checked).
 */
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type PeftBackbone,
  type PeftModel,
  type PluginFactory,
  loadAdapterFromBytes,
} from '@peftjs/core';

async function fetchOk(url: string): Promise<Response> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response;
}

export async function fetchBytes(url: string): Promise<Uint8Array> {
  return new Uint8Array(await (await fetchOk(url)).arrayBuffer());
}

export async function loadAdapterFromUrl(
  base: PeftBackbone,
  baseUrl: string,
  factories: Readonly<Record<string, PluginFactory>>,
): Promise<PeftModel> {
  const dir = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const configText = await (await fetchOk(dir + ADAPTER_CONFIG_FILE)).text();
  const weights = await fetchBytes(dir + ADAPTER_WEIGHTS_FILE);
  return loadAdapterFromBytes(base, configText, weights, { factories, source: dir });
}
