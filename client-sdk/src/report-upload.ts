import { REPORT_META_HEADER, SimpleAckSchema, type ReportMeta, type WireError } from '@flotilla/protocol';

/** Answers of the upload channel after which the device sends the same report over the socket instead. */
const FALL_BACK: ReadonlySet<string> = new Set(['FL_ERR_REPORT_WRONG_NODE', 'FL_ERR_REPORT_TOKEN_INVALID', 'FL_ERR_REPORT_TOKEN_USED', 'FL_ERR_HTTP_NOT_FOUND']);

export type UploadOutcome = { ok: true } | { ok: false; error: WireError } | { fallBack: string };

/**
 * Sends one fit report over the coordinator's upload channel (docs/protocol.md, "Report upload"):
 * `PUT <base><url>` with the encoded delta as an octet-stream body and the other fields in the
 * `x-flotilla-report` header. Resolves with the coordinator's ack, or with `fallBack` (and why)
 * when the channel could not take it: no answer (network, timeout), an answer that is not an ack
 * (a proxy's page), a 5xx, or a code that says the socket path may still work (wrong node behind a
 * load balancer, a token the node cannot check, a used token). A `fallBack` outcome folded nothing.
 */
export async function uploadReport(base: string, url: string, meta: ReportMeta, body: Uint8Array, timeoutMs: number): Promise<UploadOutcome> {
  let res: Response;
  try {
    res = await fetch(new URL(url, base), {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', [REPORT_META_HEADER]: JSON.stringify(meta) },
      body: body as Uint8Array<ArrayBuffer>,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    return { fallBack: `no answer: ${String(err).slice(0, 200)}` };
  }
  let json: unknown;
  try {
    json = await res.json();
  } catch {
    return { fallBack: `HTTP ${res.status} without an ack` };
  }
  const ack = SimpleAckSchema.safeParse(json);
  if (!ack.success) {
    const code = (json as { error?: { code?: unknown } } | null)?.error?.code;
    return { fallBack: `HTTP ${res.status}${typeof code === 'string' ? ` ${code}` : ''}` };
  }
  if (ack.data.ok) return { ok: true };
  const error = ack.data.error as WireError;
  if (res.status >= 500 || FALL_BACK.has(error.code)) return { fallBack: `HTTP ${res.status} ${error.code}` };
  return { ok: false, error };
}
