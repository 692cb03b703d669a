import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, stat, utimes } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { HubProgressEvent } from './progress.js';
import { resolveWeights } from './resolve.js';
import {
  TIMM_CONFIG,
  TIMM_REF,
  TIMM_REPO,
  freshCache,
  isolateEnvironment,
  listTree,
  mockRepos,
  weightsBytes,
} from './test-support.js';
import { MockHub } from './testing/mock-hub.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');
const WEIGHTS = weightsBytes();
const SHA256 = createHash('sha256').update(WEIGHTS).digest('hex');
const CONFIG_LENGTH = JSON.stringify(TIMM_CONFIG, null, 2).length;
const FOLDER = 'models--timm--vit_mock_patch8_32.tiny_in1k';

/** A separate Node process resolving one reference; it prints each event as a line, then `RESULT {…}`. */
const CHILD = `
const { resolveWeights } = await import(process.env.HUB_ENTRY);
const progressed = new Set();
const print = (value) => process.stdout.write(JSON.stringify(value) + '\\n');
const resolved = await resolveWeights(process.env.HUB_REF, {
  endpoint: process.env.HUB_ENDPOINT,
  cacheDir: process.env.HUB_CACHE,
  progress: (event) => {
    if (event.type !== 'progress' || !progressed.has(event.file)) print(event);
    if (event.type === 'progress') progressed.add(event.file);
  },
});
print({ type: 'result', path: resolved.path, downloaded: resolved.downloadedBytes });
`;

interface Child {
  readonly process: ChildProcess;
  readonly lines: Record<string, unknown>[];
  readonly exit: Promise<{ code: number | null; stderr: string }>;
}

function startChild(cacheDir: string, endpoint: string): Child {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key !== 'NODE_OPTIONS' && !key.startsWith('VITEST')) env[key] = value;
  }
  const child = spawn(
    process.execPath,
    ['--conditions=@peftjs/source', '--import', 'tsx', '--input-type=module', '-e', CHILD],
    {
      cwd: repoRoot,
      env: {
        ...env,
        HUB_ENTRY: pathToFileURL(join(here, 'index.ts')).href,
        HUB_REF: TIMM_REF,
        HUB_ENDPOINT: endpoint,
        HUB_CACHE: cacheDir,
      },
    },
  );
  const lines: Record<string, unknown>[] = [];
  let buffered = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const part of parts) if (part.trim()) lines.push(JSON.parse(part) as Record<string, unknown>);
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exit = new Promise<{ code: number | null; stderr: string }>((done) =>
    child.on('exit', (code) => done({ code, stderr })),
  );
  return { process: child, lines, exit };
}

async function until(condition: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let hub: MockHub;
let cacheDir: string;

beforeAll(async () => {
  await isolateEnvironment();
  hub = await MockHub.start({ repos: mockRepos(WEIGHTS) });
});
afterAll(() => hub.close());
beforeEach(async () => {
  cacheDir = await freshCache();
  hub.requests.length = 0;
  hub.fault = undefined;
});

describe('two processes fetching the same file', () => {
  it('download it once: one waits on the lock, both get the same verified blob', async () => {
    let release = () => {};
    hub.holdLfs = new Promise<void>((r) => {
      release = r;
    });
    const children = [startChild(cacheDir, hub.endpoint), startChild(cacheDir, hub.endpoint)];
    try {
      // The transfer is held until one process reports it is waiting for the other's lock.
      await until(() => children.some((c) => c.lines.some((l) => l.type === 'waiting')), 'a process waits');
    } finally {
      release();
      hub.holdLfs = undefined;
    }
    const exits = await Promise.all(children.map((c) => c.exit));
    for (const exit of exits) expect(exit.code, exit.stderr).toBe(0);
    const results = children.map((c) => c.lines.find((l) => l.type === 'result'));
    expect(results[0]?.path).toBe(
      join(cacheDir, FOLDER, 'snapshots', hub.commitOf(TIMM_REPO), 'model.safetensors'),
    );
    expect(results[1]?.path).toBe(results[0]?.path);
    // Each file crossed the network once: the bytes the two processes downloaded add up to one copy.
    const downloaded = results.map((r) => Number(r?.downloaded));
    expect(downloaded[0]! + downloaded[1]!).toBe(WEIGHTS.length + CONFIG_LENGTH);
    expect(Math.min(...downloaded)).toBeLessThan(WEIGHTS.length);
    const weightTransfers = hub.requests.filter((r) => r.server === 'lfs');
    expect(weightTransfers.map((r) => r.status)).toEqual([200]);
    const configTransfers = hub.requests.filter((r) => r.url.endsWith('/config.json'));
    expect(configTransfers).toHaveLength(1);
    const blobs = await listTree(join(cacheDir, FOLDER, 'blobs'));
    expect(blobs).toHaveLength(2);
    expect(blobs).toContain(SHA256);
    const digest = createHash('sha256')
      .update(await readFile(String(results[0]?.path)))
      .digest('hex');
    expect(digest).toBe(SHA256);
  });

  it('take over from a process that died mid-download once its lock is stale, resuming its partial file', async () => {
    hub.fault = { kind: 'slow', chunkBytes: 100_000, delayMs: 400 };
    const victim = startChild(cacheDir, hub.endpoint);
    await until(
      () => victim.lines.some((l) => l.type === 'progress' && l.file === 'model.safetensors'),
      'the first process receives bytes',
    );
    victim.process.kill('SIGKILL');
    await victim.exit;
    hub.fault = undefined;
    const incomplete = join(cacheDir, FOLDER, 'blobs', `${SHA256}.incomplete`);
    const partial = (await stat(incomplete)).size;
    expect(partial).toBeGreaterThan(0);
    // The dead holder's lock is still there; date it "just refreshed" so the wait below is the full stale time.
    const lock = join(cacheDir, '.locks', FOLDER, `${SHA256}.peftjs.lock`);
    expect((await stat(lock)).isDirectory()).toBe(true);
    const now = new Date();
    await utimes(lock, now, now);
    hub.requests.length = 0;

    const events: HubProgressEvent[] = [];
    const started = Date.now();
    const resolved = await resolveWeights(TIMM_REF, {
      endpoint: hub.endpoint,
      cacheDir,
      lockStaleMs: 2000,
      progress: (event) => events.push(event),
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(events.map((e) => e.type)).toContain('waiting');
    expect(hub.requests.filter((r) => r.server === 'lfs').map((r) => r.range)).toEqual([`bytes=${partial}-`]);
    const digest = createHash('sha256')
      .update(await readFile(resolved.path))
      .digest('hex');
    expect(digest).toBe(SHA256);
  });
});
