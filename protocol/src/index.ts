/**
 * @flotilla/protocol: the wire contract between devices and coordinators (zod schemas, typed
 * event maps, the error registry, PROTOCOL_VERSION) and the flat-weight codecs. Depends on zod
 * alone so that the SDK, the server and tools in other runtimes' build chains can share it.
 */
export { PROTOCOL_VERSION } from './version.js';
export * from './errors.js';
export * from './plan.js';
export * from './async-plan.js';
export * from './messages.js';
export * from './events.js';
export * from './model-spec.js';
export * from './tensor/index.js';
export * from './secagg/index.js';
export * from './report-upload.js';
