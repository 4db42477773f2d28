import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyPluginAsync } from 'fastify';

/**
 * Content-Security-Policy of every /ui answer: scripts, styles and fetches from this origin only,
 * no inline script or style, no eval, no frames, no plugins, no form posts anywhere.
 */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

interface UiFile {
  body: Buffer;
  gzip: Buffer;
  type: string;
  etag: string;
}

/** The console's files: server/ui (beside src/ and dist/ alike) plus the preact+htm bundle from node_modules. */
export function uiDirectory(): string {
  return fileURLToPath(new URL('../../ui/', import.meta.url));
}

function vendorFile(): string {
  // htm's package maps require() of 'htm' to dist/htm.js; its standalone ES module sits beside.
  return join(dirname(createRequire(import.meta.url).resolve('htm')), '..', 'preact', 'standalone.mjs');
}

function entry(body: Buffer, name: string): UiFile {
  return { body, gzip: gzipSync(body, { level: 9 }), type: TYPES[extname(name)] ?? 'application/octet-stream', etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/** Reads every file of the console once, at start-up; keys are paths under /ui/. */
export function loadUiFiles(dir = uiDirectory()): Map<string, UiFile> {
  const files = new Map<string, UiFile>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (TYPES[extname(name)]) files.set(relative(dir, p).split(sep).join('/'), entry(readFileSync(p), name));
    }
  };
  walk(dir);
  files.set('vendor/htm-preact.mjs', entry(readFileSync(vendorFile()), 'x.mjs'));
  // Every module is announced in the page, so the browser fetches them in parallel instead of
  // discovering the import graph one level at a time.
  const index = files.get('index.html');
  if (index) {
    const links = [...files.keys()].filter((k) => /\.m?js$/.test(k)).sort().map((k) => `<link rel="modulepreload" href="${k}">`).join('\n');
    files.set('index.html', entry(Buffer.from(index.body.toString('utf8').replace('<!-- modulepreload -->', links)), 'index.html'));
  }
  return files;
}

/**
 * The operator console under /ui/ (public routes: the page holds no data; every datum comes from
 * the token-guarded API). Files are held in memory with their gzip; answers carry UI_CSP, an ETag
 * (304 on If-None-Match) and `no-cache`, so a new server version is picked up at the next load.
 */
export const uiRoutes: FastifyPluginAsync<{ dir?: string }> = async (app, opts) => {
  const files = loadUiFiles(opts.dir);
  const schema = { hide: true } as const;
  app.get('/ui', { schema, exposeHeadRoute: false }, async (_req, reply) => reply.redirect('/ui/', 308));
  app.get('/ui/*', { schema, exposeHeadRoute: false }, async (req, reply) => {
    const path = (req.params as { '*': string })['*'] || 'index.html';
    const f = files.get(path);
    if (!f) return reply.callNotFound();
    reply
      .header('content-security-policy', UI_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .header('cache-control', 'no-cache')
      .header('etag', f.etag)
      .header('vary', 'accept-encoding')
      .type(f.type);
    if (req.headers['if-none-match'] === f.etag) return reply.status(304).send();
    if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) return reply.header('content-encoding', 'gzip').send(f.gzip);
    return reply.send(f.body);
  });
};
