import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from '../main.js';
import { failedForGood, parseQueueAddress } from './queue-protocol.js';

function sink() {
  let text = '';
  return {
    write: (t: string) => {
      text += t;
    },
    isTTY: false,
    text: () => text,
  };
}

async function peft(...argv: string[]) {
  const out = sink();
  const err = sink();
  const code = await runCli(argv, { out, err });
  return { code, out: out.text(), err: err.text() };
}

describe('queue addresses', () => {
  it('reads host, port, database, credentials and prefix; shows no password', () => {
    expect(parseQueueAddress('redis://127.0.0.1:6380/2?prefix=lab')).toMatchObject({
      host: '127.0.0.1',
      port: 6380,
      db: 2,
      prefix: 'lab',
      tls: false,
      display: 'redis://127.0.0.1:6380/2?prefix=lab',
    });
    const secret = parseQueueAddress('rediss://me:s%40cret@queue.lan');
    expect(secret).toMatchObject({
      host: 'queue.lan',
      port: 6379,
      db: 0,
      username: 'me',
      password: 's@cret',
    });
    expect(secret).toMatchObject({ tls: true, prefix: 'peft' });
    expect(secret.display).toBe('rediss://queue.lan/0');
    expect(parseQueueAddress('redis://[::1]:7000').host).toBe('::1');
  });

  it('refuses what is not a queue address, naming the flag and the fault', () => {
    expect(() => parseQueueAddress('localhost:6379')).toThrow(/--queue: "localhost:" is not a queue address/);
    expect(() => parseQueueAddress('not a url')).toThrow(/--queue: "not a url" is not an address/);
    expect(() => parseQueueAddress('http://h:1')).toThrow(/use redis:\/\/ or rediss:\/\//);
    expect(() => parseQueueAddress('redis://h:1/zero')).toThrow(/database "zero" .* is not a number/);
    expect(() => parseQueueAddress('redis://h:1?prefx=a')).toThrow(/unknown parameter "prefx"/);
    expect(() => parseQueueAddress('redis://h:1?prefix=a:b')).toThrow(/prefix "a:b" may hold only/);
  });

  it('a run that exits 1 or 2 failed for good; a signal or another exit code is a crash worth retrying', () => {
    expect(failedForGood({ code: 1, signal: null })).toBe(true);
    expect(failedForGood({ code: 2, signal: null })).toBe(true);
    expect(failedForGood({ code: null, signal: 'SIGKILL' })).toBe(false);
    expect(failedForGood({ code: 134, signal: null })).toBe(false);
    expect(failedForGood(undefined)).toBe(false);
  });
});

describe('peft worker and peft sweep --queue on the command line', () => {
  it('usage mistakes exit 2 with one message', async () => {
    expect(await peft('worker', '--sweep', 'x')).toMatchObject({ code: 2, err: /missing --queue/ });
    expect(await peft('worker', '--queue', 'redis://h:1', '--sweep', 'x', '--workers', '0')).toMatchObject({
      code: 2,
      err: /--workers must be a positive integer; got 0/,
    });
    expect(await peft('worker', '--queue', 'redis://h:1', '--swep', 'x')).toMatchObject({
      code: 2,
      err: /unknown flag --swep \(did you mean "sweep"\?\)/,
    });
    const sweepFile = join(dirname(fileURLToPath(import.meta.url)), '../../../../benchmarks/mini-vtab.yaml');
    expect(
      await peft('sweep', '--config', sweepFile, '--queue', 'redis://h:1', '--workers', '2'),
    ).toMatchObject({
      code: 2,
      err: /--workers sets the local pool; with --queue, start `peft worker` processes instead/,
    });
    expect(await peft('sweep', '--config', sweepFile, '--return-adapter')).toMatchObject({
      code: 2,
      err: /--return-adapter needs --queue/,
    });
  });

  it('an unreachable Redis is one error naming the address (exit 1)', async () => {
    const result = await peft('worker', '--queue', 'redis://127.0.0.1:1/0', '--sweep', 'x');
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/cannot reach the queue at redis:\/\/127\.0\.0\.1:1\/0: .*ECONNREFUSED/);
  });
});

/** Relative modules `file` imports statically (`import … from`, `export … from`), not `import()`. */
function staticImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1] as string);
}

describe('the queue client loads only on use', () => {
  it('nothing main.ts reaches through static imports imports bullmq or ioredis', () => {
    const main = resolve(dirname(fileURLToPath(import.meta.url)), '../main.ts');
    const seen = new Set<string>();
    const queue = [main];
    const external = new Set<string>();
    while (queue.length > 0) {
      const file = queue.pop() as string;
      if (seen.has(file)) continue;
      seen.add(file);
      for (const spec of staticImports(file)) {
        if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
        else external.add(spec);
      }
    }
    expect(seen.has(resolve(dirname(main), 'sweep/command.ts'))).toBe(true);
    expect(seen.has(resolve(dirname(main), 'sweep/queue.ts'))).toBe(false);
    expect([...external].filter((name) => /^(bullmq|ioredis)/.test(name))).toEqual([]);
    // …while the queue modules themselves do import them (so the check above looks at the right thing).
    expect(staticImports(resolve(dirname(main), 'sweep/queue.ts'))).toContain('bullmq');
  });
});
