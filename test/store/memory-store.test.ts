import { MemoryStore } from '../../server/src/store/memory-store.js';
import { storeContract } from './store-contract.js';

storeContract('MemoryStore', async () => ({ open: async () => new MemoryStore() }));
