export * from './shamir.js';
export * from './crypto.js';
export * from './quantize.js';
export * from './graph.js';
export * from './config.js';
export * from './messages.js';
export * from './masking.js';
