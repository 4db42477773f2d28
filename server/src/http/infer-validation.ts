import type { FastifySchemaCompiler } from 'fastify';
import { validatorCompiler } from 'fastify-type-provider-zod';
import { isSharedHeader } from '../serving/binary-tensors.js';
import { HEADER_SAFE } from './ids.js';

/**
 * Validation of the inference routes' requests without zod's cost on the common case. Each check
 * below accepts a value only when the route's zod schema (inference-routes.ts) would accept it and
 * give back an equal value: a plain object with only the keys the schema names (zod strips the
 * others, so any other key goes to zod), strings and numbers within the schema's bounds. Anything
 * else, valid or not, is handed to the zod validator of fastify-type-provider-zod, so every
 * refusal keeps its code, message and details. It runs per request: a CPU profile of the batched
 * OIP route had zod validation at ~6% of main-thread time (docs/serving.md).
 */

const plain = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype;

/**
 * An object zod's z.object takes and gives back with the same keys and values: a plain object, or
 * one whose prototype carries nothing (no own keys, itself without a prototype). The router's
 * path parameters are such objects (find-my-way's `NullObject`); a check that wanted
 * Object.prototype sent every request's parameters to zod (seen in a CPU profile, docs/serving.md).
 */
function bare(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== 'object') return false;
  const p = Object.getPrototypeOf(x);
  return p === Object.prototype || p === null || (Object.getPrototypeOf(p) === null && Reflect.ownKeys(p).length === 0);
}

/** Every own key of `o` is in `keys` (no `__proto__` own key: JSON.parse can make one). */
function onlyKeys(o: Record<string, unknown>, keys: readonly string[]): boolean {
  for (const k in o) if (!keys.includes(k)) return false;
  return !Object.prototype.hasOwnProperty.call(o, '__proto__');
}

const str = (x: unknown, min: number, max: number): boolean => typeof x === 'string' && x.length >= min && x.length <= max;
/** `z.record(z.string(), z.unknown())`: a plain object, values anything. */
const record = (x: unknown): boolean => plain(x) && !Object.prototype.hasOwnProperty.call(x, '__proto__');
const optional = (x: unknown, check: (v: unknown) => boolean): boolean => x === undefined || check(x);

const INPUT_KEYS = ['name', 'shape', 'datatype', 'parameters', 'data'] as const;
const BODY_KEYS = ['id', 'parameters', 'inputs', 'outputs'] as const;
const OUTPUT_KEYS = ['name', 'parameters'] as const;

function isShape(x: unknown): boolean {
  if (!Array.isArray(x) || x.length < 1 || x.length > 8) return false;
  for (const d of x) if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) return false;
  return true;
}

function isInput(x: unknown): boolean {
  return plain(x) && onlyKeys(x, INPUT_KEYS) && str(x.name, 1, 256) && isShape(x.shape) && str(x.datatype, 1, 16) && optional(x.parameters, record);
}

const isOutput = (x: unknown): boolean => plain(x) && onlyKeys(x, OUTPUT_KEYS) && str(x.name, 1, 256) && optional(x.parameters, record);

const listOf = (x: unknown, min: number, max: number, each: (v: unknown) => boolean): boolean => Array.isArray(x) && x.length >= min && x.length <= max && x.every(each);

/** The OIP inference body (`InferBody` in inference-routes.ts). */
export function isInferBody(x: unknown): boolean {
  return (
    plain(x) &&
    onlyKeys(x, BODY_KEYS) &&
    optional(x.id, (v) => typeof v === 'string' && HEADER_SAFE.test(v)) &&
    optional(x.parameters, record) &&
    listOf(x.inputs, 1, 16, isInput) &&
    optional(x.outputs, (v) => listOf(v, 0, 16, isOutput))
  );
}

/** `{ name }` or `{ name, version }` path parameters (`ModelParams`, `VersionParams`). */
export function isInferParams(x: unknown): boolean {
  return bare(x) && onlyKeys(x, ['name', 'version']) && str(x.name, 1, 128) && optional(x.version, (v) => str(v, 1, 64));
}

/** An empty query string (`VariantQuery` without `?variant=`). */
const isEmptyQuery = (x: unknown): boolean => plain(x) && Object.keys(x).length === 0;

const FAST: Record<string, (x: unknown) => boolean> = { body: isInferBody, params: isInferParams, querystring: isEmptyQuery };

/** A route-level validatorCompiler for the inference routes: the checks above, else zod. */
export const inferValidatorCompiler: FastifySchemaCompiler<unknown> = (route) => {
  const slow = validatorCompiler(route as Parameters<typeof validatorCompiler>[0]);
  const fast = route.httpPart ? FAST[route.httpPart] : undefined;
  if (!fast) return slow;
  if (route.httpPart !== 'body') return (data: unknown) => (fast(data) ? { value: data } : slow(data));
  // A binary body's header is parsed once per distinct header and shared, deeply frozen
  // (binary-tensors.ts): once it passed, it passes again without being walked.
  const passed = new WeakSet<object>();
  return (data: unknown) => {
    if (passed.has(data as object)) return { value: data };
    if (!fast(data)) return slow(data);
    if (isSharedHeader(data)) passed.add(data as object);
    return { value: data };
  };
};
