import { AppError, isErrorCode } from '../errors.js';

export interface UpstreamResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

/**
 * HTTP to the coordinator a replica or sidecar follows: bearer token, a deadline per request,
 * and coded errors. Contracts:
 *  - a request that cannot connect, or gets no answer in `timeoutMs`, or a 5xx without a coded
 *    body, throws FL_ERR_UPSTREAM_UNREACHABLE naming the URL (never the token);
 *  - an error answer carrying a registry code (`{ error: { code } }`) throws that code with
 *    `details.upstream`, so 401 stays FL_ERR_AUTH_INVALID_TOKEN and 404 FL_ERR_MODEL_NOT_FOUND;
 *  - 304 is an answer, not an error.
 */
export class UpstreamClient {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly token: string | undefined,
    private readonly timeoutMs = 10_000,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  async request(method: string, path: string, opts: { body?: unknown; headers?: Record<string, string> } = {}): Promise<UpstreamResponse> {
    const url = `${this.baseUrl}${path}`;
    let res: Response;
    let body: Uint8Array;
    try {
      res = await fetch(url, {
        method,
        headers: {
          accept: 'application/json',
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...opts.headers,
        },
        body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
        redirect: 'follow',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      body = new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new AppError('FL_ERR_UPSTREAM_UNREACHABLE', { upstream: url, why: cause?.code ?? cause?.message ?? (err as Error).message });
    }
    if (res.status < 400) return { status: res.status, headers: res.headers, body };
    let code: unknown;
    let details: unknown;
    try {
      const e = JSON.parse(Buffer.from(body).toString('utf8')).error;
      code = e?.code;
      details = e?.details;
    } catch {
      code = undefined;
    }
    if (isErrorCode(code) && code !== 'FL_ERR_INTERNAL') throw new AppError(code, { upstream: url, ...(details && typeof details === 'object' ? details : {}) });
    if (res.status >= 500) throw new AppError('FL_ERR_UPSTREAM_UNREACHABLE', { upstream: url, status: res.status });
    throw new AppError('FL_ERR_UPSTREAM_BAD_RESPONSE', { upstream: url, status: res.status });
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, { body });
    try {
      return JSON.parse(Buffer.from(res.body).toString('utf8')) as T;
    } catch {
      throw new AppError('FL_ERR_UPSTREAM_BAD_RESPONSE', { upstream: `${this.baseUrl}${path}`, why: 'not JSON' });
    }
  }

  /** Opens a server-sent-events stream (the caller reads `body`); throws as `request` does. */
  async stream(path: string, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const url = `${this.baseUrl}${path}`;
    let res: Response;
    try {
      res = await fetch(url, { headers: { accept: 'text/event-stream', ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) }, signal });
    } catch (err) {
      throw new AppError('FL_ERR_UPSTREAM_UNREACHABLE', { upstream: url, why: (err as Error).message });
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new AppError(res.status === 401 ? 'FL_ERR_AUTH_INVALID_TOKEN' : res.status === 403 ? 'FL_ERR_AUTH_FORBIDDEN' : 'FL_ERR_UPSTREAM_BAD_RESPONSE', { upstream: url, status: res.status });
    }
    return res.body;
  }
}
