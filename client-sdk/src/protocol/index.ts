export { PROTOCOL_VERSION } from './version.js';
export * from './errors.js';
export * from './plan.js';
export * from './messages.js';
export * from './events.js';
export * from './model-spec.js';
