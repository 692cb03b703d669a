/**
 * @peftjs/core's browser-side adapter IO (adapter-bytes.ts) with a real SHIP adapter: downloads are byte for byte
 * the files `saveAdapter` writes, and URLs, Blobs and picked Files load with every check `loadAdapter` makes.
 * Node 20 has fetch, Blob and File, so this runs here exactly as in a browser.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VisionTransformer } from '@peftjs/backbone';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type PeftModel,
  type Tensor4D,
  adapterDownloads,
  createPeftModel,
  initBackend,
  loadAdapterFromBlobs,
  loadAdapterFromFiles,
  loadAdapterFromUrl,
  pickAdapterFiles,
  saveAdapter,
  serializeAdapter,
  tf,
} from '@peftjs/core';
import { expectNoLeakedTensors, expectTensorClose } from '@peftjs/core/testing';
import { mnistDigits, prepareDataOf, tinyMnistVit } from '@peftjs/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHIP_PLUGIN_FACTORIES, ship } from './ship.js';

const factories = SHIP_PLUGIN_FACTORIES;

describe('adapters without a file system', () => {
  let vit: VisionTransformer;
  let images: Tensor4D;
  let model: PeftModel;
  let dir: string;
  let server: Server;
  let baseUrl: string;

  beforeAll(async () => {
    await initBackend({ prefer: 'wasm', log: false });
    vit = VisionTransformer.create(tinyMnistVit({ depth: 4 }), { seed: 3 });
    images = tf.tensor4d(mnistDigits('t10k', 0, 16).images, [16, 28, 28, 1]);
    model = createPeftModel(vit, ship({ threshold: 0.95, promptLength: 2, hierarchy: { prototypes: 4 } }), {
      seed: 4,
      numClasses: 10,
    });
    await model.prepare(prepareDataOf(images, 8));
    dir = await mkdtemp(join(tmpdir(), 'peftjs-adapter-bytes-'));
    await saveAdapter(model, dir);
    // The folder served over HTTP; anything else is a 404.
    server = createServer(async (request, response) => {
      const name = (request.url ?? '').replace(/^\/adapter\//, '');
      if (name !== ADAPTER_CONFIG_FILE && name !== ADAPTER_WEIGHTS_FILE) {
        response.writeHead(404, 'Not Found').end();
        return;
      }
      response.writeHead(200).end(await readFile(join(dir, name)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    model.dispose();
    vit.dispose();
    images.dispose();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  it('serializes exactly the files saveAdapter writes, and offers them for download under their names', async () => {
    const serialized = serializeAdapter(model);
    expect(serialized.configText).toBe(await readFile(join(dir, ADAPTER_CONFIG_FILE), 'utf8'));
    expect(Buffer.from(serialized.weights).equals(await readFile(join(dir, ADAPTER_WEIGHTS_FILE)))).toBe(
      true,
    );
    expect(JSON.parse(serialized.configText)).toEqual(serialized.config);
    const downloads = adapterDownloads(model);
    expect(downloads.map((d) => [d.name, d.blob.type])).toEqual([
      [ADAPTER_CONFIG_FILE, 'application/json'],
      [ADAPTER_WEIGHTS_FILE, 'application/octet-stream'],
    ]);
    expect(await downloads[0]?.blob.text()).toBe(serialized.configText);
    expect(new Uint8Array(await (downloads[1] as { blob: Blob }).blob.arrayBuffer())).toEqual(
      serialized.weights,
    );
  });

  it('loads from a URL, from Blobs and from picked Files with the logits of the saved model', async () => {
    const expected = model.predict(images);
    const [config, weights] = adapterDownloads(model).map((d) => d.blob) as [Blob, Blob];
    const renamed = [
      new File([weights], 'adapter_model (1).safetensors'),
      new File([config], 'adapter_config (1).json'),
    ];
    for (const load of [
      () => loadAdapterFromUrl(vit, `${baseUrl}/adapter`, { factories }),
      () => loadAdapterFromBlobs(vit, { config, weights }, { factories }),
      () => loadAdapterFromFiles(vit, renamed, { factories }),
    ]) {
      const loaded = await load();
      const logits = loaded.predict(images);
      expectTensorClose(logits, expected, { atol: 1e-6, label: 'round-trip logits' });
      logits.dispose();
      loaded.dispose();
    }
    expected.dispose();
  });

  it('keeps the tensor count flat over repeated loads', async () => {
    const [config, weights] = adapterDownloads(model).map((d) => d.blob) as [Blob, Blob];
    await expectNoLeakedTensors(async () => {
      const loaded = await loadAdapterFromBlobs(vit, { config, weights }, { factories });
      loaded.dispose();
    });
  });

  it('refuses another base by its fingerprint, from Blobs as from a folder', async () => {
    const other = VisionTransformer.create(tinyMnistVit({ depth: 4 }), { seed: 9 });
    const [config, weights] = adapterDownloads(model).map((d) => d.blob) as [Blob, Blob];
    await expect(
      loadAdapterFromBlobs(other, { config, weights }, { factories, source: 'dropped' }),
    ).rejects.toThrow(
      /dropped\/adapter_config\.json: base weights differ .*fingerprint sha256:\w+ ≠ sha256:\w+/,
    );
    other.dispose();
  });

  it('names the URL of a file the server does not have, and of a server that cannot be reached', async () => {
    await expect(loadAdapterFromUrl(vit, `${baseUrl}/elsewhere/`, { factories })).rejects.toMatchObject({
      code: 'IO_FAILED',
      message: expect.stringMatching(
        /cannot fetch http:\/\/127\.0\.0\.1:\d+\/elsewhere\/adapter_\w+\.\w+: HTTP 404 Not Found/,
      ),
    });
    const refused = () => Promise.reject(new TypeError('fetch failed'));
    await expect(
      loadAdapterFromUrl(vit, 'https://example.invalid/a', { factories, fetch: refused }),
    ).rejects.toThrow(/cannot fetch https:\/\/example\.invalid\/a\/adapter_\w+\.\w+: fetch failed/);
  });

  it('says which file is missing or ambiguous among picked files, listing them', () => {
    const json = new File(['{}'], 'adapter_config.json');
    const weights = new File([new Uint8Array(8)], 'adapter_model.safetensors');
    expect(() => pickAdapterFiles([json])).toThrow(
      /no adapter_model\.safetensors \(or single \*\.safetensors file\) among the files given \(adapter_config\.json\)/,
    );
    expect(() => pickAdapterFiles([weights, new File(['{}'], 'a.json'), new File(['{}'], 'b.json')])).toThrow(
      /more than one adapter_config\.json \(or single \*\.json file\) among the files given \(adapter_model\.safetensors, a\.json, b\.json\)/,
    );
    expect(() => pickAdapterFiles([])).toThrow(/among the files given \(none\)/);
    // Exact names win over other candidates.
    const picked = pickAdapterFiles([new File(['{}'], 'other.json'), json, weights]);
    expect((picked.config as File).name).toBe('adapter_config.json');
  });

  it('reports a corrupt weights Blob as the safetensors error, naming the source', async () => {
    const [config] = adapterDownloads(model).map((d) => d.blob) as [Blob];
    await expect(
      loadAdapterFromBlobs(
        vit,
        { config, weights: new Blob([new Uint8Array([1, 2, 3])]) },
        { factories, source: 'drop' },
      ),
    ).rejects.toMatchObject({
      code: 'SAFETENSORS_INVALID',
      message: expect.stringContaining('drop/adapter_model.safetensors'),
    });
  });
});
