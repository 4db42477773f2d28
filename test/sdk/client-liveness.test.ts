import { afterEach, describe, expect, it } from 'vitest';
import { FlotillaClient, type Dataset } from '@flotilla/client';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { nextEvent, startServer } from '../helpers/server.js';

function data(n: number): Dataset {
  const x = new Float32Array(n * 8).map((_, i) => Math.sin(i));
  const y = new Uint8Array(n).map((_, i) => i % 3);
  return { x, y, inputSize: 8, numClasses: 3 };
}

describe('SDK liveness', () => {
  let app: FlotillaApp;
  const clients: FlotillaClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await app.close();
  });

  it('keeps heartbeating through local training far longer than the session timeout', async () => {
    const s = await startServer({ heartbeatIntervalMs: 150, sessionTimeoutMs: 700 });
    app = s.app;
    const co = app.flotilla.coordinator;
    // ~4000 batches of tiny-mlp: several seconds, i.e. many session timeouts long
    await co.createTask({ id: 'long', preset: 'tiny-mlp', plan: { clientsPerRound: 1, overSelect: 1, maxRounds: 1, epochs: 20, batchSize: 1, roundDeadlineMs: 120_000 } });
    const c = new FlotillaClient({ url: s.url, token: app.flotilla.deviceToken, taskId: 'long', data: { train: () => data(200) } });
    clients.push(c);
    const disconnects: string[] = [];
    c.on('disconnected', (e) => disconnects.push(e.reason));
    await c.start();
    const round = nextEvent<RoundRecord>(co.events, 'round', () => true, 110_000);
    const fit = nextEvent<{ trainMs: number }>(c, 'fit', () => true, 110_000);
    await co.startTask('long');
    const [r, f] = await Promise.all([round, fit]);
    expect(f.trainMs).toBeGreaterThan(1400); // at least twice the session timeout
    expect(r.state).toBe('done');
    expect(r.dropped).toEqual([]);
    expect(disconnects).toEqual([]);
  });

  it('reconnects after a transport loss and says hello again with the same device id', async () => {
    const s = await startServer();
    app = s.app;
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 'r', preset: 'tiny-mlp', plan: { clientsPerRound: 1 } });
    const c = new FlotillaClient({ url: s.url, token: app.flotilla.deviceToken, taskId: 'r', data: { train: () => data(10) }, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
    clients.push(c);
    await c.start();
    const id = c.deviceId!;
    const first = co.sessions.get(id)!.sessionId;
    const again = nextEvent<{ deviceId: string; sessionId: string }>(c, 'connected');
    co.sessions.get(id)!.socket.conn.close(); // transport dies under the device
    const e = await again;
    expect(e.deviceId).toBe(id);
    expect(e.sessionId).not.toBe(first);
    expect(co.sessions.get(id)!.sessionId).toBe(e.sessionId);
  });

  it('fails start() with the coded error on a bad token, without retrying', async () => {
    const s = await startServer();
    app = s.app;
    await app.flotilla.coordinator.createTask({ id: 'x', preset: 'tiny-mlp', plan: { clientsPerRound: 1 } });
    const c = new FlotillaClient({ url: s.url, token: 'nope', taskId: 'x', data: { train: () => data(10) } });
    clients.push(c);
    await expect(c.start()).rejects.toMatchObject({ wire: { code: 'FL_ERR_AUTH_INVALID_TOKEN' } });
    expect(c.connected).toBe(false);
  });
});
