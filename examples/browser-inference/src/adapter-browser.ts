/**
 * Browser counterpart of `loadAdapter` (@peftjs/core), which reads the two adapter files with node:fs: fetch
 * `adapter_config.json` and `adapter_model.safetensors` over HTTP and rebuild the model the same way — plugins from
 * their saved options, artifacts restored, every saved tensor assigned by name with its shape checked.
 * Not done here: the base-weights fingerprint check (core computes it with node:crypto).
 */
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type AdapterConfig,
  type PeftBackbone,
  type PeftModel,
  type PluginFactory,
  createPeftModel,
  parseSafetensors,
  tf,
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
  const config = (await (await fetchOk(dir + ADAPTER_CONFIG_FILE)).json()) as AdapterConfig;
  if (config.format !== 'peftjs-adapter')
    throw new Error(`${dir}${ADAPTER_CONFIG_FILE}: not a PEFT.js adapter`);
  const plugins = config.plugins.map((record) => {
    const factory = factories[record.type];
    if (!factory) throw new Error(`no factory for plugin type "${record.type}"`);
    return factory(record.options);
  });
  const model = createPeftModel(base, plugins, { seed: config.seed, numClasses: config.numClasses });
  try {
    model.restoreArtifacts(Object.fromEntries(config.plugins.map((p) => [p.name, p.artifacts])));
    const file = parseSafetensors(await fetchBytes(dir + ADAPTER_WEIGHTS_FILE), {
      source: ADAPTER_WEIGHTS_FILE,
    });
    for (const name of file.names()) {
      if (!model.registry.has(name)) throw new Error(`${name}: no such tensor in the rebuilt model`);
      const host = file.getHost(name);
      const target = model.registry.get(name);
      if (target.shape.join(',') !== host.shape.join(',')) {
        throw new Error(`${name}: saved [${host.shape}] vs model [${target.shape}]`);
      }
      const value = tf.tensor(host.data, host.shape, 'float32');
      target.assign(value);
      value.dispose();
    }
    model.clearPromptCache();
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  }
}
