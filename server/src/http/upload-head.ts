import { REPORT_META_HEADER } from '@flotilla/protocol';
import { AppError } from '../errors.js';

/**
 * The request head of a report upload as the dedicated receiver (upload-connection.ts) accepts it:
 * strict HTTP/1.1 for exactly one request form (docs/protocol.md, "Report upload"; docs/cluster.md,
 * "The report upload channel"). Pure: bytes in, a parsed head or a coded refusal out.
 */

/** The first bytes of every request the dedicated receiver owns. */
export const UPLOAD_PREFIX = Buffer.from('PUT /api/v1/devices/reports/', 'latin1');

/**
 * Whether a request beginning with `bytes` is a report upload: 'upload', 'other', or 'more' when
 * the bytes so far are a proper prefix of UPLOAD_PREFIX (wait for more before deciding).
 */
export function sniffUpload(bytes: Uint8Array): 'upload' | 'other' | 'more' {
  const n = Math.min(bytes.length, UPLOAD_PREFIX.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== UPLOAD_PREFIX[i]) return 'other';
  return n === UPLOAD_PREFIX.length ? 'upload' : 'more';
}

export interface UploadHead {
  token: string;
  /** The `x-flotilla-report` header's value, when present. */
  meta: string | undefined;
  contentLength: number;
  /** Bytes of the head, CRLFCRLF included: the body starts there. */
  headBytes: number;
}

export interface HeadLimits {
  /** Largest head, CRLFCRLF included (431 past it). */
  maxHeadBytes: number;
  /** Largest Content-Length accepted before anything else is looked at (413 past it). */
  maxBodyBytes: number;
}

const REQUEST_LINE = /^PUT \/api\/v1\/devices\/reports\/([A-Za-z0-9._~-]{1,512}) HTTP\/1\.1$/;
/** RFC 9110 token characters. */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Visible ASCII, obs-text, space and tab; no other control characters. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const DIGITS = /^[0-9]{1,15}$/;

const bad = (why: string) => new AppError('FL_ERR_HTTP_BAD_REQUEST', { why });

/**
 * Parses the head at the start of `buf`. Returns null while the head is incomplete and still
 * acceptable (wait for more bytes), the head when complete, or throws AppError:
 * FL_ERR_HTTP_HEADERS_TOO_LARGE (past maxHeadBytes), FL_ERR_HTTP_BAD_REQUEST (request line not
 * exactly `PUT /api/v1/devices/reports/<token> HTTP/1.1`, bare CR or LF, obs-fold, a bad header
 * name or value, no or several Host, several x-flotilla-report, a Content-Length that is not one
 * field of digits), FL_ERR_HTTP_LENGTH_REQUIRED (Transfer-Encoding, or no Content-Length),
 * FL_ERR_HTTP_UNSUPPORTED_MEDIA (content-type other than application/octet-stream),
 * FL_ERR_REPORT_TOO_LARGE (Content-Length past maxBodyBytes).
 */
export function parseUploadHead(buf: Uint8Array, limits: HeadLimits): UploadHead | null {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const end = b.indexOf('\r\n\r\n', 0, 'latin1');
  const scan = end < 0 ? b.length : end + 4;
  // Line ends are CRLF only: a bare LF or a CR not followed by LF is refused wherever it is.
  for (let i = b.indexOf(10); i >= 0 && i < scan; i = b.indexOf(10, i + 1)) if (i === 0 || b[i - 1] !== 13) throw bad('bare LF');
  for (let i = b.indexOf(13); i >= 0 && i < scan; i = b.indexOf(13, i + 1)) if (i + 1 < b.length && b[i + 1] !== 10) throw bad('bare CR');
  if (end < 0) {
    if (b.length >= limits.maxHeadBytes) throw new AppError('FL_ERR_HTTP_HEADERS_TOO_LARGE', { limit: limits.maxHeadBytes });
    return null;
  }
  if (end + 4 > limits.maxHeadBytes) throw new AppError('FL_ERR_HTTP_HEADERS_TOO_LARGE', { limit: limits.maxHeadBytes });
  const lines = b.toString('latin1', 0, end).split('\r\n');
  const m = REQUEST_LINE.exec(lines[0]);
  if (!m) throw bad('request line is not PUT /api/v1/devices/reports/<token> HTTP/1.1');
  let host = 0;
  let meta: string | undefined;
  let length: string | undefined;
  let lengths = 0;
  let contentType: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.length === 0 || line[0] === ' ' || line[0] === '\t') throw bad('obs-fold or empty header line');
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon);
    if (!FIELD_NAME.test(name)) throw bad('malformed header name');
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!FIELD_VALUE.test(value)) throw bad('control character in a header value');
    switch (name.toLowerCase()) {
      case 'host':
        host++;
        break;
      case 'content-length':
        lengths++;
        length = value;
        break;
      case 'transfer-encoding':
        throw new AppError('FL_ERR_HTTP_LENGTH_REQUIRED', { why: 'Transfer-Encoding is not accepted' });
      case 'content-type':
        if (contentType !== undefined) throw bad('more than one content-type');
        contentType = value;
        break;
      case REPORT_META_HEADER:
        if (meta !== undefined) throw bad(`more than one ${REPORT_META_HEADER}`);
        meta = value;
        break;
    }
  }
  if (host !== 1) throw bad('exactly one Host header is required');
  if (lengths === 0) throw new AppError('FL_ERR_HTTP_LENGTH_REQUIRED', { why: 'no Content-Length' });
  if (lengths > 1) throw bad('more than one Content-Length');
  if (!DIGITS.test(length!)) throw bad('Content-Length is not digits');
  if (contentType === undefined || contentType.split(';')[0].trim().toLowerCase() !== 'application/octet-stream') {
    throw new AppError('FL_ERR_HTTP_UNSUPPORTED_MEDIA', { expected: 'application/octet-stream' });
  }
  const contentLength = Number(length);
  if (contentLength > limits.maxBodyBytes) throw new AppError('FL_ERR_REPORT_TOO_LARGE', { limit: limits.maxBodyBytes, got: contentLength });
  return { token: m[1], meta, contentLength, headBytes: end + 4 };
}
