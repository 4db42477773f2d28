import { MemoryBlobStore } from '../../server/src/store/memory-blob-store.js';
import { blobContract } from './blob-contract.js';

blobContract('MemoryBlobStore', async () => ({ open: async () => new MemoryBlobStore() }));
