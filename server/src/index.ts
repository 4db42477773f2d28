export { buildApp, type AppOptions, type Flotilla, type FlotillaApp } from './app.js';
export { Coordinator, type CreateTaskInput, tokenMatches } from './coordinator/coordinator.js';
export type { CentralEvaluator, CoordinatorStats } from './coordinator/deps.js';
export type { Store, PageOptions, VersionQuery, CommitInput } from './store/store.js';
export type { BlobStore } from './store/blob-store.js';
export { MemoryStore } from './store/memory-store.js';
export { MemoryBlobStore } from './store/memory-blob-store.js';
export type * from './store/records.js';
export { AppError, ERROR_REGISTRY, type ErrorCode } from './errors.js';
