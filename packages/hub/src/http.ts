import { PeftError } from '@peftjs/core';
import type { HubSettings } from './settings.js';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const USER_AGENT = 'peftjs-hub/0.1 (+https://github.com/peftjs)';

/** Replaces every occurrence of the token in `text` (belt and braces: no message we build contains it). */
export function redact(text: string, token: string | undefined): string {
  return token ? text.split(token).join('<redacted>') : text;
}

/**
 * A `fetch` for the Hub that owns authentication: the token goes only to requests on the endpoint's origin
 * (never to an LFS/CDN host a redirect points to), redirects are followed by hand for that reason, and a caller's
 * own `Authorization` header is dropped. Everything else is the platform `fetch`.
 */
export function hubFetch(settings: HubSettings): typeof fetch {
  const endpointOrigin = new URL(settings.endpoint).origin;
  return async (input, init = {}) => {
    let url = new URL(input instanceof Request ? input.url : String(input));
    let method = (init.method ?? 'GET').toUpperCase();
    let body = init.body;
    for (let hop = 0; ; hop++) {
      const headers = new Headers(init.headers);
      headers.delete('authorization');
      headers.set('user-agent', USER_AGENT);
      if (settings.token && url.origin === endpointOrigin)
        headers.set('authorization', `Bearer ${settings.token}`);
      const response = await fetch(url, { ...init, method, body, headers, redirect: 'manual' });
      const location = response.headers.get('location');
      if (!REDIRECTS.has(response.status) || !location) return response;
      await response.body?.cancel();
      if (hop >= MAX_REDIRECTS) {
        throw new PeftError('HUB_REQUEST_FAILED', `more than ${MAX_REDIRECTS} redirects from ${url.origin}`);
      }
      url = new URL(location, url);
      if (response.status === 303 || (response.status <= 302 && method === 'POST')) {
        method = 'GET';
        body = undefined;
      }
    }
  };
}

/** Where a failed request was heading, for messages: the reference and what was asked for. */
export interface RequestContext {
  /** The weights reference as the user typed it (canonical form). */
  readonly reference: string;
  /** Repository id. */
  readonly repo: string;
  /** Revision asked for. */
  readonly revision: string;
  /** The file, when the request was for one. */
  readonly file?: string;
  /** The settings (endpoint, token presence). */
  readonly settings: HubSettings;
}

function serverMessage(response: Response, body: string): string {
  const header = response.headers.get('x-error-message');
  if (header) return header;
  try {
    const json = JSON.parse(body) as { error?: unknown };
    if (typeof json.error === 'string') return json.error;
  } catch {
    // Not JSON: the text itself, shortened.
  }
  return body.trim().slice(0, 200);
}

/**
 * The one error for a Hub response that is not a success: unknown repository / revision (404, or the Hub's 401
 * for anonymous requests to repositories it will not admit exist), gated or private without a (sufficient)
 * token (401/403), file not in the repository (404 `EntryNotFound`), anything else. Each names the reference.
 */
export async function responseError(response: Response, context: RequestContext): Promise<PeftError> {
  const body = await response.text().catch(() => '');
  const code = response.headers.get('x-error-code') ?? '';
  const { reference, repo, revision, settings } = context;
  const said = redact(serverMessage(response, body), settings.token);
  const status = response.status;
  const hub = settings.endpoint;
  let error: PeftError;
  if (code === 'RepoNotFound' || (status === 404 && code === '' && !context.file)) {
    const hint = settings.token ? '' : ' (if it is private, set HF_TOKEN)';
    error = new PeftError(
      'HUB_NOT_FOUND',
      `${reference}: repository "${repo}" not found on ${hub}${hint} [${status}]`,
    );
  } else if (code === 'RevisionNotFound') {
    error = new PeftError(
      'HUB_NOT_FOUND',
      `${reference}: revision "${revision}" not found in ${repo} [${status}]`,
    );
  } else if (code === 'EntryNotFound' || status === 404) {
    error = new PeftError(
      'HUB_NOT_FOUND',
      `${reference}: file "${context.file ?? '?'}" is not in ${repo} at ${revision} [${status}]`,
    );
  } else if (status === 401 || status === 403) {
    const what = code === 'GatedRepo' ? 'is gated' : 'needs authorisation';
    const fix = settings.token
      ? `the token in use has no access: request access on ${hub}/${repo} with that account`
      : `accept its terms on ${hub}/${repo}, then set HF_TOKEN (or run huggingface-cli login)`;
    error = new PeftError('HUB_ACCESS_DENIED', `${reference}: ${repo} ${what} [${status}]: ${fix}`);
  } else {
    error = new PeftError(
      'HUB_REQUEST_FAILED',
      `${reference}: ${hub} answered ${status}${said ? ` (${said})` : ''}`,
    );
  }
  return error;
}

/** A `fetch` for `@huggingface/hub`'s API calls that turns every unsuccessful answer into `responseError`. */
export function checkedFetch(base: typeof fetch, context: RequestContext): typeof fetch {
  return async (input, init) => {
    let response: Response;
    try {
      response = await base(input, init);
    } catch (error) {
      throw networkError(error, context);
    }
    if (!response.ok) throw await responseError(response, context);
    return response;
  };
}

/** A request that never got an answer (refused, DNS, reset): names the reference and the offline escape hatch. */
export function networkError(error: unknown, context: RequestContext): PeftError {
  if (error instanceof PeftError) return error;
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (error as Error).message;
  return new PeftError(
    'HUB_REQUEST_FAILED',
    `${context.reference}: cannot reach ${context.settings.endpoint} (${redact(String(why), context.settings.token)}); ` +
      'set HF_HUB_OFFLINE=1 to use the cache only',
    { cause: error },
  );
}
