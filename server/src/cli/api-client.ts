import { AppError } from '@flotilla/protocol';

/** A command line the CLI cannot run (exit status 2). */
export class UsageError extends Error {}

/** A thin HTTP client of the admin API for the CLI: bearer auth, JSON in and out, coded errors. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** A coded error raised here (checks run locally, as the server would) as the CLI reports API errors. */
export const asApiError = (err: unknown): unknown => (err instanceof AppError ? new ApiError(err.status, err.code, err.message, err.details) : err);

export class ApiClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string | undefined,
  ) {}

  async call<T = any>(method: string, path: string, body?: unknown, raw?: { contentType: string; length: number; chunks: AsyncIterable<Uint8Array> }): Promise<T> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: {
          accept: 'application/json',
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(raw ? { 'content-type': raw.contentType, 'content-length': String(raw.length) } : {}),
        },
        // A raw body streams (duplex 'half'): the archive is never whole in memory.
        body: raw ? (raw.chunks as unknown as BodyInit) : body !== undefined ? JSON.stringify(body) : undefined,
        ...(raw ? { duplex: 'half' } : {}),
        redirect: 'follow',
      } as RequestInit);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(0, 'FL_ERR_CLI_UNREACHABLE', `cannot reach ${this.baseUrl}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = json?.error;
      throw new ApiError(res.status, typeof e?.code === 'string' ? e.code : `HTTP_${res.status}`, typeof e?.message === 'string' ? e.message : res.statusText, e?.details);
    }
    return json as T;
  }

  /** A binary GET (artifacts, weights); coded ApiError on failure like `call`. */
  async bytes(path: string): Promise<Uint8Array> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), { headers: this.token ? { authorization: `Bearer ${this.token}` } : {}, redirect: 'follow' });
    } catch (err) {
      throw new ApiError(0, 'FL_ERR_CLI_UNREACHABLE', `cannot reach ${this.baseUrl}: ${(err as Error).message}`);
    }
    if (!res.ok) {
      const e = (await res.json().catch(() => undefined))?.error;
      throw new ApiError(res.status, typeof e?.code === 'string' ? e.code : `HTTP_${res.status}`, typeof e?.message === 'string' ? e.message : res.statusText, e?.details);
    }
    return new Uint8Array(await res.arrayBuffer());
  }
}
