import { describe, expect, it } from 'vitest';
import { DeviceVectors, FileStateStore, MemoryStateStore, type DeviceStateStore } from '@flotilla/client';
import { tempDir } from '../store/temp-dir.js';

/**
 * The shared suite of DeviceStateStore (client-sdk/src/state/device-state-store.ts): every
 * implementation keeps bytes per key, replaces them whole, owns no caller array, and a new
 * instance over the same place (a restarted app) reads what the old one wrote.
 */
function storeSuite(name: string, open: () => Promise<{ make: () => DeviceStateStore; close: () => Promise<void> }>): void {
  describe(`device-state store: ${name} (shared suite)`, () => {
    it('get/set/delete by key, copies in and out', async () => {
      const { make, close } = await open();
      try {
        const s = make();
        expect(await s.get('a')).toBeNull();
        const v = Uint8Array.from([1, 2, 3]);
        await s.set('a', v);
        v[0] = 9; // the caller may reuse its array
        const got = await s.get('a');
        expect(Array.from(got!)).toEqual([1, 2, 3]);
        got![1] = 7; // and owns what it got
        expect(Array.from((await s.get('a'))!)).toEqual([1, 2, 3]);
        await s.set('a', Uint8Array.from([4]));
        expect(Array.from((await s.get('a'))!)).toEqual([4]);
        await s.set('dev/task/x.y', Uint8Array.from([5]));
        expect(Array.from((await s.get('dev/task/x.y'))!)).toEqual([5]);
        expect(await s.get('dev/task/x')).toBeNull();
        await s.delete('a');
        await s.delete('never-set');
        expect(await s.get('a')).toBeNull();
      } finally {
        await close();
      }
    });

    it('named vectors: staged until commit, null for another length', async () => {
      const { make, close } = await open();
      try {
        const v = DeviceVectors.for(make(), 'dev-1', 'task-1');
        v.stage('scaffold.c', Float32Array.from([0.5, -1.25, 3e-8]));
        expect(await v.load('scaffold.c', 3)).toBeNull();
        await v.commit();
        expect(Array.from((await v.load('scaffold.c', 3))!)).toEqual(Array.from(Float32Array.from([0.5, -1.25, 3e-8])));
        expect(await v.load('scaffold.c', 4)).toBeNull(); // the model changed: start again from zero
        expect(await DeviceVectors.for(make(), 'dev-2', 'task-1').load('scaffold.c', 3)).toBeNull(); // per device
      } finally {
        await close();
      }
    });
  });
}

const shared = new MemoryStateStore();
storeSuite('memory', async () => ({ make: () => shared, close: async () => {} }));
storeSuite('file', async () => {
  const tmp = await tempDir();
  return { make: () => new FileStateStore(tmp.dir), close: tmp.remove };
});

describe('file store persistence', () => {
  it('a new instance over the same directory (a restarted app) reads what the old one committed', async () => {
    const tmp = await tempDir();
    try {
      const a = DeviceVectors.for(new FileStateStore(tmp.dir), 'd', 't');
      a.stage('feddyn.h', Float32Array.from([1, 2]));
      await a.commit();
      expect(Array.from((await DeviceVectors.for(new FileStateStore(tmp.dir), 'd', 't').load('feddyn.h', 2))!)).toEqual([1, 2]);
    } finally {
      await tmp.remove();
    }
  });
});
