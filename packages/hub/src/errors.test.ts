import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PeftError } from '@peftjs/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { progressBar } from './progress.js';
import { resolveWeights } from './resolve.js';
import type { HubOptions } from './settings.js';
import {
  GATED_REPO,
  SECRET_TOKEN,
  TIMM_REF,
  freshCache,
  isolateEnvironment,
  listTree,
  mockRepos,
  weightsBytes,
} from './test-support.js';
import { MockHub } from './testing/mock-hub.js';

let hub: MockHub;
let cacheDir: string;
/** Everything the resolver said: progress output and every error's message, stack and cause chain. */
let said: string;

const options = (extra: HubOptions = {}): HubOptions => ({
  endpoint: hub.endpoint,
  cacheDir,
  progress: progressBar({ write: (text: string) => (said += text), isTTY: true }),
  attempts: 2,
  ...extra,
});

/** Resolves expecting a PeftError; records its message, stack and causes in `said`. */
async function failure(reference: string, extra: HubOptions = {}): Promise<PeftError> {
  try {
    await resolveWeights(reference, options(extra));
  } catch (error) {
    let link: unknown = error;
    while (link instanceof Error) {
      said += `${link.message}\n${link.stack ?? ''}\n`;
      link = link.cause;
    }
    expect(error).toBeInstanceOf(PeftError);
    return error as PeftError;
  }
  throw new Error(`${reference} resolved, an error was expected`);
}

beforeAll(async () => {
  await isolateEnvironment();
  hub = await MockHub.start({ repos: mockRepos(weightsBytes(50_000)), tokens: [SECRET_TOKEN] });
});
afterAll(() => hub.close());
beforeEach(async () => {
  cacheDir = await freshCache();
  hub.requests.length = 0;
  hub.fault = undefined;
  said = '';
});

describe('errors name the reference', () => {
  it('unknown repository: the Hub answers 401 to anonymous requests and 404 to authenticated ones', async () => {
    const anonymous = await failure('hf:nobody/no-such-vit');
    expect(anonymous.code).toBe('HUB_NOT_FOUND');
    expect(anonymous.message).toBe(
      `hf:nobody/no-such-vit: repository "nobody/no-such-vit" not found on ${hub.endpoint} ` +
        '(if it is private, set HF_TOKEN) [401]',
    );
    const withToken = await failure('hf:nobody/no-such-vit', { token: SECRET_TOKEN });
    expect(withToken.message).toBe(
      `hf:nobody/no-such-vit: repository "nobody/no-such-vit" not found on ${hub.endpoint} [404]`,
    );
    expect(await listTree(cacheDir)).toEqual([]);
  });

  it('unknown revision', async () => {
    const error = await failure(`${TIMM_REF}@v9`);
    expect(error.code).toBe('HUB_NOT_FOUND');
    expect(error.message).toMatch(
      /^timm:vit_mock_patch8_32\.tiny_in1k@v9: revision "v9" not found in timm\//,
    );
  });

  it('gated repository without a token (401) and with a token lacking access (403)', async () => {
    const anonymous = await failure(`hf:${GATED_REPO}`);
    expect(anonymous.code).toBe('HUB_ACCESS_DENIED');
    expect(anonymous.message).toBe(
      `hf:${GATED_REPO}: ${GATED_REPO} is gated [401]: accept its terms on ${hub.endpoint}/${GATED_REPO}, then set ` +
        'HF_TOKEN (or run huggingface-cli login)',
    );
    const wrong = await failure(`hf:${GATED_REPO}`, { token: 'hf_otherAccountToken' });
    expect(wrong.code).toBe('HUB_ACCESS_DENIED');
    expect(wrong.message).toMatch(/is gated \[403\]: the token in use has no access/);
    expect(wrong.message).not.toContain('hf_otherAccountToken');
  });

  it('file not in the repository', async () => {
    const error = await failure(`${TIMM_REF}:weights/open_clip.safetensors`);
    expect(error.code).toBe('HUB_NOT_FOUND');
    expect(error.message).toMatch(
      /^timm:\S+:weights\/open_clip\.safetensors: file "weights\/open_clip\.safetensors" is not in/,
    );
  });

  it('offline cache miss, checksum mismatch and an unreachable endpoint', async () => {
    const offline = await failure(TIMM_REF, { offline: true });
    expect(offline.code).toBe('HUB_OFFLINE_MISS');
    expect(offline.message.startsWith(`${TIMM_REF}: offline`)).toBe(true);
    hub.fault = { kind: 'wrong-bytes' };
    const mismatch = await failure(TIMM_REF);
    expect(mismatch.code).toBe('CHECKSUM_MISMATCH');
    expect(mismatch.message.startsWith(`${TIMM_REF}: model.safetensors failed verification`)).toBe(true);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = await failure(TIMM_REF, { endpoint: `http://127.0.0.1:${port}` });
    expect(unreachable.code).toBe('HUB_REQUEST_FAILED');
    expect(unreachable.message).toBe(
      `${TIMM_REF}: cannot reach http://127.0.0.1:${port} (ECONNREFUSED); set HF_HUB_OFFLINE=1 to use the cache only`,
    );
  });

  it('a cache folder that cannot be written', async () => {
    const blocker = join(cacheDir, 'not-a-folder');
    await writeFile(blocker, '');
    const error = await failure(TIMM_REF, { cacheDir: blocker });
    expect(error.code).toBe('IO_FAILED');
    expect(error.message).toMatch(/^timm:vit_mock_patch8_32\.tiny_in1k: ENOTDIR/);
  });

  it('malformed references say what is expected', async () => {
    for (const bad of [
      'hf:',
      'hf:a/b/c',
      'hf:org/re po',
      'timm:timm/vit',
      'hf:org/repo:../x',
      'hf:org/repo@',
    ]) {
      const error = await failure(bad);
      expect(error.code, bad).toBe('HUB_INVALID_REFERENCE');
      expect(error.message.startsWith(`weights reference "${bad}"`), error.message).toBe(true);
    }
    expect(hub.requests).toEqual([]);
  });
});

describe('the token', () => {
  it('goes to the endpoint only, never to the LFS host a redirect points at', async () => {
    const resolved = await resolveWeights(`hf:${GATED_REPO}`, options({ token: SECRET_TOKEN }));
    expect(resolved.size).toBe(weightsBytes(50_000).length);
    const api = hub.requests.filter((r) => r.server === 'api');
    const lfs = hub.requests.filter((r) => r.server === 'lfs');
    expect(api.length).toBeGreaterThan(0);
    expect(lfs.length).toBe(1);
    expect(api.every((r) => r.authorization === `Bearer ${SECRET_TOKEN}`)).toBe(true);
    expect(lfs.map((r) => r.authorization)).toEqual([undefined]);
  });

  it('is read from HF_TOKEN or the token file, and appears in no message or progress output', async () => {
    process.env.HF_TOKEN = SECRET_TOKEN;
    try {
      await resolveWeights(`hf:${GATED_REPO}`, options());
      for (const reference of ['hf:nobody/no-such-vit', `${TIMM_REF}@v9`, `${TIMM_REF}:nope.bin`])
        await failure(reference);
      hub.fault = { kind: 'wrong-bytes' };
      await failure(TIMM_REF);
      hub.fault = { kind: 'drop', afterBytes: 1000 };
      cacheDir = await freshCache();
      await failure(TIMM_REF);
      await failure(TIMM_REF, { endpoint: 'http://127.0.0.1:9' });
    } finally {
      delete process.env.HF_TOKEN;
    }
    const tokenFile = join(process.env.HF_HOME as string, 'token');
    await writeFile(tokenFile, `${SECRET_TOKEN}\n`);
    try {
      cacheDir = await freshCache();
      hub.requests.length = 0;
      hub.fault = undefined;
      await resolveWeights(`hf:${GATED_REPO}`, options());
      expect(hub.requests.find((r) => r.server === 'api')?.authorization).toBe(`Bearer ${SECRET_TOKEN}`);
    } finally {
      await writeFile(tokenFile, '');
    }
    expect(said.length).toBeGreaterThan(1000);
    expect(said).not.toContain(SECRET_TOKEN);
    expect(said).not.toContain(SECRET_TOKEN.slice(3, 20));
  });
});
