import { createHash } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A file of a mock repository: its bytes, stored as a Git LFS object (large files) or as a plain git blob. */
export interface MockRepoFile {
  /** The content. */
  readonly bytes: Uint8Array;
  /** Served through the LFS redirect with sha256 etags (default: true for `.safetensors`/`.npz`/`.bin`). */
  readonly lfs?: boolean;
}

/** A repository the mock serves at one commit. */
export interface MockRepo {
  /** Files by path in the repository. */
  readonly files: Readonly<Record<string, Uint8Array | MockRepoFile>>;
  /** Downloads need a token listed in `MockHubOptions.tokens` (401 without one, 403 with another). */
  readonly gated?: boolean;
  /** Branch names besides `main` that resolve to the commit. */
  readonly branches?: readonly string[];
}

/** Repositories by id (`org/name`) and the tokens that may read gated ones. */
export interface MockHubOptions {
  /** Repositories by id. */
  readonly repos: Readonly<Record<string, MockRepo>>;
  /** Tokens with access to gated repositories. */
  readonly tokens?: readonly string[];
}

/**
 * A fault injected into LFS downloads (the large files): cut the connection after `afterBytes` body bytes, serve
 * bytes that differ from the advertised sha256, send the body slowly, answer with a status, or ignore `Range`.
 * `times` (default: every request) counts down per affected request.
 */
export type MockFault = (
  | {
      /** Cut the connection mid-body. */
      readonly kind: 'drop';
      /** Body bytes sent before the cut. */
      readonly afterBytes: number;
    }
  | {
      /** Flip one byte in the middle: the sha256 no longer matches. */
      readonly kind: 'wrong-bytes';
    }
  | {
      /** Send the body in chunks with pauses. */
      readonly kind: 'slow';
      /** Bytes per chunk. */
      readonly chunkBytes: number;
      /** Pause after each chunk, ms. */
      readonly delayMs: number;
    }
  | {
      /** Answer with an error status. */
      readonly kind: 'status';
      /** The status code. */
      readonly status: number;
    }
  | {
      /** Send the whole file with 200 whatever `Range` asked for. */
      readonly kind: 'ignore-range';
    }
) & {
  /** Requests left to affect (default: all). */
  times?: number;
};

/** What the Hub lists for a file. */
export interface MockFileInfo {
  /** sha256 of the content (the LFS oid). */
  readonly sha256: string;
  /** Git blob id (of the LFS pointer for LFS files). */
  readonly gitOid: string;
  /** Size in bytes. */
  readonly size: number;
  /** Stored as a Git LFS object. */
  readonly lfs: boolean;
}

/** One request the mock answered. */
export interface MockRequest {
  /** `api` (the endpoint: API and resolve URLs) or `lfs` (the redirect target on another port). */
  readonly server: 'api' | 'lfs';
  /** HTTP method. */
  readonly method: string;
  /** Path and query. */
  readonly url: string;
  /** The `Range` header, when sent. */
  readonly range: string | undefined;
  /** The `Authorization` header, when sent. */
  readonly authorization: string | undefined;
  /** Status answered. */
  status: number;
}

interface StoredFile {
  readonly bytes: Uint8Array;
  readonly lfs: boolean;
  readonly sha256: string;
  /** Git blob id of what git stores: the content, or the LFS pointer for LFS files. */
  readonly gitOid: string;
  readonly pointerSize: number;
}

interface StoredRepo {
  readonly id: string;
  readonly commit: string;
  readonly gated: boolean;
  readonly branches: readonly string[];
  readonly files: ReadonlyMap<string, StoredFile>;
}

/** Git's blob id: sha1 of `blob <size>\0<content>`. */
export function gitBlobOid(bytes: Uint8Array): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

function storeFile(path: string, file: Uint8Array | MockRepoFile): StoredFile {
  const spec = file instanceof Uint8Array ? { bytes: file } : file;
  const lfs = spec.lfs ?? /\.(safetensors|npz|bin)$/.test(path);
  const sha256 = createHash('sha256').update(spec.bytes).digest('hex');
  const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${spec.bytes.length}\n`;
  const pointerBytes = new TextEncoder().encode(pointer);
  return {
    bytes: spec.bytes,
    lfs,
    sha256,
    gitOid: gitBlobOid(lfs ? pointerBytes : spec.bytes),
    pointerSize: pointerBytes.length,
  };
}

function storeRepo(id: string, repo: MockRepo): StoredRepo {
  const files = new Map(Object.entries(repo.files).map(([path, file]) => [path, storeFile(path, file)]));
  const commit = createHash('sha1')
    .update(id)
    .update([...files.entries()].map(([path, f]) => `${path}:${f.gitOid}`).join('\n'))
    .digest('hex');
  return { id, commit, gated: repo.gated ?? false, branches: ['main', ...(repo.branches ?? [])], files };
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve(`http://127.0.0.1:${port}`);
    });
  });
}

function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'invalid' | null {
  if (!header) return null;
  const match = /^bytes=(\d+)-(\d*)$/.exec(header);
  if (!match) return 'invalid';
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  return start >= size || end < start ? 'invalid' : { start, end };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A loopback Hugging Face Hub for tests, on 127.0.0.1: `GET /api/models/{repo}/revision/{rev}`,
 * `POST /api/models/{repo}/paths-info/{rev}`, `GET|HEAD /{repo}/resolve/{rev}/{file}` with the Hub's headers
 * (`X-Repo-Commit`, `ETag`, `X-Linked-Etag`, `X-Linked-Size`, a 302 to a second server on another port for LFS
 * files, `X-Error-Code` on errors), Range requests, and injectable faults. Records every request.
 */
export class MockHub {
  /** Every request answered, in order. */
  readonly requests: MockRequest[] = [];
  /** The fault applied to LFS downloads, if any. */
  fault: MockFault | undefined;
  /** While set, LFS downloads wait for this promise before answering (to line up concurrent clients). */
  holdLfs: Promise<void> | undefined;
  private readonly repos: Map<string, StoredRepo>;

  private constructor(
    options: MockHubOptions,
    private readonly api: Server,
    private readonly lfs: Server,
    /** The endpoint URL (`HF_ENDPOINT`). */
    readonly endpoint: string,
    /** Origin of the LFS server the endpoint redirects to. */
    readonly lfsOrigin: string,
  ) {
    this.repos = new Map(Object.entries(options.repos).map(([id, repo]) => [id, storeRepo(id, repo)]));
    this.tokens = new Set(options.tokens ?? []);
  }

  private readonly tokens: Set<string>;

  /** Starts both servers on free loopback ports. */
  static async start(options: MockHubOptions): Promise<MockHub> {
    const api = createServer();
    const lfs = createServer();
    const [endpoint, lfsOrigin] = await Promise.all([listen(api), listen(lfs)]);
    const hub = new MockHub(options, api, lfs, endpoint, lfsOrigin);
    api.on('request', (req, res) => void hub.handle('api', req, res));
    lfs.on('request', (req, res) => void hub.handle('lfs', req, res));
    return hub;
  }

  /** The commit `main` of `repo` resolves to. */
  commitOf(repo: string): string {
    const stored = this.repos.get(repo);
    if (!stored) throw new Error(`mock hub: no repo ${repo}`);
    return stored.commit;
  }

  /** The sha256, git blob id, size and storage of a file, as the Hub reports them. */
  fileInfo(repo: string, path: string): MockFileInfo {
    const file = this.repos.get(repo)?.files.get(path);
    if (!file) throw new Error(`mock hub: no ${path} in ${repo}`);
    return { sha256: file.sha256, gitOid: file.gitOid, size: file.bytes.length, lfs: file.lfs };
  }

  /** Stops both servers (open connections are cut). */
  async close(): Promise<void> {
    for (const server of [this.api, this.lfs]) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  private async handle(server: 'api' | 'lfs', req: IncomingMessage, res: ServerResponse): Promise<void> {
    const record: MockRequest = {
      server,
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      range: req.headers.range,
      authorization: req.headers.authorization,
      status: 0,
    };
    this.requests.push(record);
    res.on('finish', () => {
      record.status = res.statusCode;
    });
    const body = await new Promise<string>((resolve) => {
      let text = '';
      req.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
      });
      req.on('end', () => resolve(text));
    });
    try {
      if (server === 'lfs') await this.serveLfs(req, res);
      else await this.serveApi(req, res, body);
    } catch (error) {
      if (!res.headersSent) this.error(res, 500, 'Internal', (error as Error).message);
      else res.destroy();
    }
  }

  private error(res: ServerResponse, status: number, code: string, message: string): void {
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'X-Error-Code': code,
      'X-Error-Message': message,
    });
    res.end(JSON.stringify({ error: message }));
  }

  /** The repo and commit of a request, or an error answered (the Hub's 401-for-anonymous on unknown repos). */
  private lookup(
    req: IncomingMessage,
    res: ServerResponse,
    repoId: string,
    revision: string,
  ): StoredRepo | null {
    const repo = this.repos.get(repoId);
    if (!repo) {
      const status = req.headers.authorization ? 404 : 401;
      this.error(res, status, 'RepoNotFound', `Repository Not Found for url: ${req.url}.`);
      return null;
    }
    if (revision !== repo.commit && !repo.branches.includes(revision)) {
      this.error(res, 404, 'RevisionNotFound', `Invalid rev id: ${revision}`);
      return null;
    }
    return repo;
  }

  private async serveApi(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
    const url = new URL(req.url ?? '/', this.endpoint);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|paths-info)\/([^/]+)$/.exec(url.pathname);
    if (api) {
      const [, repoId, kind, rev] = api as unknown as [string, string, string, string];
      const repo = this.lookup(req, res, repoId, decodeURIComponent(rev));
      if (!repo) return;
      const paths = (JSON.parse(body || '{}') as { paths?: string[] }).paths ?? [];
      this.json(res, kind === 'revision' ? this.modelInfo(repo) : this.pathsInfo(repo, paths));
      return;
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!resolve) {
      this.error(res, 404, 'NotFound', `no route ${url.pathname}`);
      return;
    }
    const [, repoId, rev, encodedPath] = resolve as unknown as [string, string, string, string];
    const repo = this.lookup(req, res, repoId, decodeURIComponent(rev));
    if (!repo) return;
    const path = decodeURIComponent(encodedPath);
    if (repo.gated && !this.tokens.has((req.headers.authorization ?? '').replace(/^Bearer /, ''))) {
      const status = req.headers.authorization ? 403 : 401;
      const message = `Access to model ${repo.id} is restricted. You must have access to it and be authenticated.`;
      this.error(res, status, 'GatedRepo', message);
      return;
    }
    const file = repo.files.get(path);
    if (!file) {
      this.error(res, 404, 'EntryNotFound', `${path} does not exist on "${rev}"`);
      return;
    }
    const headers: Record<string, string> = {
      'X-Repo-Commit': repo.commit,
      ETag: `"${file.gitOid}"`,
      'Accept-Ranges': 'bytes',
    };
    if (file.lfs) {
      res.writeHead(302, {
        ...headers,
        'X-Linked-Etag': `"${file.sha256}"`,
        'X-Linked-Size': String(file.bytes.length),
        Location: `${this.lfsOrigin}/lfs/${file.sha256}?repo=${encodeURIComponent(repo.id)}`,
      });
      res.end();
      return;
    }
    await this.sendBytes(req, res, file.bytes, headers);
  }

  private modelInfo(repo: StoredRepo): Record<string, unknown> {
    return {
      _id: repo.commit.slice(0, 24),
      id: repo.id,
      sha: repo.commit,
      private: false,
      gated: repo.gated ? 'manual' : false,
      pipeline_tag: 'image-classification',
      downloads: 0,
      likes: 0,
      lastModified: '2024-01-01T00:00:00.000Z',
      siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })),
    };
  }

  private pathsInfo(repo: StoredRepo, paths: readonly string[]): Record<string, unknown>[] {
    return paths.flatMap((path) => {
      const file = repo.files.get(path);
      if (!file) return [];
      const size = file.bytes.length;
      return [
        {
          type: 'file',
          path,
          oid: file.gitOid,
          size,
          ...(file.lfs ? { lfs: { oid: file.sha256, size, pointerSize: file.pointerSize } } : {}),
        },
      ];
    });
  }

  private json(res: ServerResponse, value: unknown): void {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(value));
  }

  private takeFault(): MockFault | undefined {
    const fault = this.fault;
    if (!fault) return undefined;
    if (fault.times !== undefined) {
      fault.times -= 1;
      if (fault.times <= 0) this.fault = undefined;
    }
    return fault;
  }

  private async serveLfs(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const sha = /^\/lfs\/([0-9a-f]{64})$/.exec(new URL(req.url ?? '/', this.lfsOrigin).pathname)?.[1];
    const file = [...this.repos.values()]
      .flatMap((repo) => [...repo.files.values()])
      .find((f) => f.lfs && f.sha256 === sha);
    if (!file) return this.error(res, 404, 'NotFound', 'no such object');
    await this.holdLfs;
    const fault = this.takeFault();
    if (fault?.kind === 'status') return this.error(res, fault.status, 'Fault', `injected ${fault.status}`);
    let bytes = file.bytes;
    if (fault?.kind === 'wrong-bytes') {
      bytes = Uint8Array.from(file.bytes);
      const middle = Math.floor(bytes.length / 2);
      bytes[middle] = (bytes[middle] as number) ^ 0xff;
    }
    const range = fault?.kind === 'ignore-range' ? null : (req.headers.range ?? null);
    await this.sendBytes(
      req,
      res,
      bytes,
      { ETag: `"${file.sha256}"`, 'Accept-Ranges': 'bytes' },
      range,
      fault,
    );
  }

  private async sendBytes(
    req: IncomingMessage,
    res: ServerResponse,
    bytes: Uint8Array,
    headers: Record<string, string>,
    rangeHeader: string | null = req.headers.range ?? null,
    fault?: MockFault,
  ): Promise<void> {
    const range = parseRange(rangeHeader ?? undefined, bytes.length);
    if (range === 'invalid') {
      res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` });
      res.end();
      return;
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? bytes.length - 1;
    const body = bytes.subarray(start, end + 1);
    res.writeHead(range ? 206 : 200, {
      ...headers,
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(body.length),
      ...(range ? { 'Content-Range': `bytes ${start}-${end}/${bytes.length}` } : {}),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (fault?.kind === 'drop') {
      res.write(body.subarray(0, Math.min(fault.afterBytes, body.length)));
      await sleep(20);
      res.socket?.destroy();
      return;
    }
    if (fault?.kind === 'slow') {
      for (let offset = 0; offset < body.length; offset += fault.chunkBytes) {
        if (res.destroyed) return;
        res.write(body.subarray(offset, offset + fault.chunkBytes));
        await sleep(fault.delayMs);
      }
      res.end();
      return;
    }
    res.end(body);
  }
}
