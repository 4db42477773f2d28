import { z } from 'zod';

/**
 * Names the API creates and later takes back in a URL path (task ids, model names, deployment
 * names): at most MAX_ID_LENGTH characters of `[A-Za-z0-9._:-]`, so that
 *  - every route that names one accepts it: fastify's router refuses a path parameter longer than
 *    ROUTER_MAX_PARAM_LENGTH (measured after percent-decoding) before any schema runs, and the
 *    longest parameter a route takes is an id plus a TF Serving verb (`{name}:predict`);
 *  - it can be echoed in a response header (`x-model-name`, `x-deployment`) unchanged.
 * Device ids (protocol/src/messages.ts) follow the same rule.
 */
export const MAX_ID_LENGTH = 128;

/** fastify `routerOptions.maxParamLength` (its default is 100): room for an id and a `:predict` suffix. */
export const ROUTER_MAX_PARAM_LENGTH = 256;

export const ResourceId = z.string().min(1).max(MAX_ID_LENGTH).regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits and . _ : - only');

/**
 * Client-chosen request ids (the OIP body's `id`, `x-request-id`) are echoed in the
 * `x-request-id` response header: printable ASCII only (no control characters, no newline, no
 * NUL, nothing outside US-ASCII), 1-256 characters.
 */
export const HEADER_SAFE = /^[\x20-\x7e]{1,256}$/;
export const RequestId = z.string().regex(HEADER_SAFE, 'printable ASCII (0x20-0x7e), 1-256 characters');
