import { describe, expect, it } from 'vitest';
import { parseUploadHead, sniffUpload } from '../../server/src/http/upload-head.js';

/** The dedicated report receiver's head parser (server/src/http/upload-head.ts): strict HTTP/1.1 for one request form. */
const limits = { maxHeadBytes: 8192, maxBodyBytes: 1_000_000 };
const TOKEN = 'eyJ0IjoiYSJ9.c2ln';
const head = (lines: string[], requestLine = `PUT /api/v1/devices/reports/${TOKEN} HTTP/1.1`) => Buffer.from([requestLine, ...lines, '', ''].join('\r\n'), 'latin1');
const good = ['Host: 127.0.0.1:8080', 'Content-Type: application/octet-stream', 'Content-Length: 792', 'X-Flotilla-Report: {"numExamples":1}'];
const code = (buf: Buffer): string => {
  try {
    parseUploadHead(buf, limits);
  } catch (err) {
    return (err as { code: string }).code;
  }
  return 'accepted';
};

describe('sniffUpload', () => {
  it('decides on the fewest bytes that tell', () => {
    expect(sniffUpload(Buffer.from('PUT /api/v1/dev'))).toBe('more');
    expect(sniffUpload(Buffer.from('PUT /api/v1/devices/reports/x'))).toBe('upload');
    expect(sniffUpload(Buffer.from('GET /'))).toBe('other');
    expect(sniffUpload(Buffer.from('PUT /api/v1/models'))).toBe('other');
    expect(sniffUpload(Buffer.alloc(0))).toBe('more');
  });
});

describe('parseUploadHead', () => {
  it('parses the head of a well-formed upload, header names in any case, the body starting after CRLFCRLF', () => {
    const buf = Buffer.concat([head(good), Buffer.from('BODY')]);
    expect(parseUploadHead(buf, limits)).toEqual({ token: TOKEN, meta: '{"numExamples":1}', contentLength: 792, headBytes: buf.length - 4 });
    expect(parseUploadHead(head(['host: a', 'content-type: application/octet-stream; x=1', 'content-length:  0 ']), limits)?.contentLength).toBe(0);
  });

  it('waits while the head is incomplete, and refuses it past the size limit', () => {
    const full = head(good);
    for (const n of [1, 10, full.length - 1]) expect(parseUploadHead(full.subarray(0, n), limits)).toBeNull();
    expect(code(head([...good, `X-Pad: ${'a'.repeat(9000)}`]))).toBe('FL_ERR_HTTP_HEADERS_TOO_LARGE');
    expect(code(Buffer.from(`PUT /api/v1/devices/reports/${TOKEN} HTTP/1.1\r\nX-Pad: ${'a'.repeat(9000)}`))).toBe('FL_ERR_HTTP_HEADERS_TOO_LARGE');
  });

  it('accepts exactly one request line', () => {
    for (const rl of [
      `PUT /api/v1/devices/reports/${TOKEN} HTTP/1.0`,
      `PUT /api/v1/devices/reports/${TOKEN}  HTTP/1.1`,
      `PUT /api/v1/devices/reports/${TOKEN}?x=1 HTTP/1.1`,
      `PUT /api/v1/devices/reports/a%20b HTTP/1.1`,
      `PUT /api/v1/devices/reports/ HTTP/1.1`,
      `PUT /api/v1/devices/reports/${TOKEN}/more HTTP/1.1`,
      `PUT /api/v1/devices/reports/${'a'.repeat(513)} HTTP/1.1`,
    ]) expect(code(head(good, rl)), rl).toBe('FL_ERR_HTTP_BAD_REQUEST');
  });

  it('refuses bare LF, bare CR, obs-fold, bad header names and control characters', () => {
    expect(code(Buffer.from(`PUT /api/v1/devices/reports/${TOKEN} HTTP/1.1\nHost: a\n\n`))).toBe('FL_ERR_HTTP_BAD_REQUEST');
    expect(code(Buffer.from(`PUT /api/v1/devices/reports/${TOKEN} HTTP/1.1\r\nHost: a\n`))).toBe('FL_ERR_HTTP_BAD_REQUEST');
    expect(code(Buffer.from(`PUT /api/v1/devices/reports/${TOKEN} HTTP/1.1\r\nHost: a\rb\r\n\r\n`))).toBe('FL_ERR_HTTP_BAD_REQUEST');
    expect(code(head([...good, 'X-A: 1', ' folded']))).toBe('FL_ERR_HTTP_BAD_REQUEST');
    expect(code(head([...good, 'Bad Name: 1']))).toBe('FL_ERR_HTTP_BAD_REQUEST');
    expect(code(head([...good, 'X-A : 1']))).toBe('FL_ERR_HTTP_BAD_REQUEST');
    expect(code(head([...good, 'no colon']))).toBe('FL_ERR_HTTP_BAD_REQUEST');
    expect(code(head([...good, ': empty name']))).toBe('FL_ERR_HTTP_BAD_REQUEST');
    expect(code(head([...good, 'X-A: a\x00b']))).toBe('FL_ERR_HTTP_BAD_REQUEST');
  });

  it('needs one Host and exactly one Content-Length of digits, no Transfer-Encoding, an octet-stream body within the limit', () => {
    const without = (name: string) => good.filter((l) => !l.toLowerCase().startsWith(name));
    expect(code(head(without('host')))).toBe('FL_ERR_HTTP_BAD_REQUEST');
    expect(code(head([...good, 'Host: b']))).toBe('FL_ERR_HTTP_BAD_REQUEST');
    expect(code(head(without('content-length')))).toBe('FL_ERR_HTTP_LENGTH_REQUIRED');
    expect(code(head([...good, 'Content-Length: 792']))).toBe('FL_ERR_HTTP_BAD_REQUEST');
    for (const v of ['+792', '-1', '79 2', '0x10', '', '1e3', '7920000000000000000']) expect(code(head([...without('content-length'), `Content-Length: ${v}`])), v).toBe('FL_ERR_HTTP_BAD_REQUEST');
    expect(code(head([...without('content-length'), 'Transfer-Encoding: chunked']))).toBe('FL_ERR_HTTP_LENGTH_REQUIRED');
    expect(code(head([...good, 'Transfer-Encoding: chunked']))).toBe('FL_ERR_HTTP_LENGTH_REQUIRED');
    expect(code(head([...good, 'X-Flotilla-Report: {}']))).toBe('FL_ERR_HTTP_BAD_REQUEST');
    expect(code(head(without('content-type')))).toBe('FL_ERR_HTTP_UNSUPPORTED_MEDIA');
    expect(code(head([...without('content-type'), 'Content-Type: application/json']))).toBe('FL_ERR_HTTP_UNSUPPORTED_MEDIA');
    expect(code(head([...without('content-length'), 'Content-Length: 1000001']))).toBe('FL_ERR_REPORT_TOO_LARGE');
    expect(code(head([...without('content-length'), 'Content-Length: 1000000']))).toBe('accepted');
  });
});
