// Entry of every simulator worker thread. Node 20 cannot start a worker from a .ts file even when
// the parent runs under tsx (the loader hooks are per thread), so this plain-JS shim registers
// tsx in the worker first and then imports the real entry named in workerData.__entry.
import { workerData } from 'node:worker_threads';

const entry = workerData && workerData.__entry;
if (typeof entry !== 'string') throw new Error('worker-bootstrap: workerData.__entry (a file URL) is required');
if (entry.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(entry);
