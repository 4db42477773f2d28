// Entry of simulator worker threads when the simulator runs from its TypeScript sources (tests,
// tsx). Node 20 cannot start a worker from a .ts file even when the parent runs under tsx (loader
// hooks are per thread), so this plain-JS shim registers the repository's development loader
// (tsx + the @flotilla/source condition) in the worker first and then imports the entry named in
// workerData.__entry. Compiled builds (dist/) start workers from device-worker.js directly and
// never load this file, which is why it is not part of the published package.
import { workerData } from 'node:worker_threads';

const entry = workerData && workerData.__entry;
if (typeof entry !== 'string') throw new Error('worker-bootstrap: workerData.__entry (a file URL) is required');
await import(new URL('../../scripts/dev-loader.mjs', import.meta.url).href);
await import(entry);
