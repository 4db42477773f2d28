/** The answer of one real HTTP request: status, the body parsed as JSON when it is JSON, and headers. */
export interface HttpAnswer {
  status: number;
  json: any;
  text: string;
  headers: Headers;
}

/**
 * A fetch over real HTTP to `base + path` with a bearer token (null: none) and a JSON body
 * (a string is sent as is); the body comes back parsed when it is JSON.
 */
export async function httpCall(base: string, method: string, path: string, token: string | null, body?: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const res = await fetch(base + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}
