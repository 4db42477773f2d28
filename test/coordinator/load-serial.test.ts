import { afterEach, describe, expect, it } from 'vitest';
import type { FlotillaApp } from '@flotilla/server';
import { startServer } from '../helpers/server.js';

/**
 * Coordinator.load (a restart's or a cluster takeover's restore of a task from the store) and the
 * task's state changes run one after another (server/src/coordinator/coordinator.ts, `serially`).
 * A start that landed while a load was between its read of the task and its new runner went to the
 * runner being replaced, and the new runner kept the state the load had read: in a cluster test
 * the new leader held the task as `created` and never ran a round.
 */
describe('a task reload and a state change at the same time', () => {
  let app: FlotillaApp;
  afterEach(async () => {
    await app?.close();
  });

  it('a start issued during a reload is kept by the reloaded runner', async () => {
    app = (await startServer()).app;
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 't', preset: 'tiny-mlp', plan: { clientsPerRound: 2 } });
    const [loaded, started] = await Promise.all([co.load('t', 'fail-in-flight', 'test reload'), co.startTask('t')]);
    expect(started.state).toBe('running');
    expect(co.getRunner('t')).toBe(loaded);
    expect(co.getRunner('t').record.state).toBe('running');
    expect((await app.flotilla.store.getTask('t'))!.state).toBe('running');
  });

  it('a pause issued during a reload is kept by the reloaded runner', async () => {
    app = (await startServer()).app;
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 't', preset: 'tiny-mlp', plan: { clientsPerRound: 2 }, start: true });
    const [, paused] = await Promise.all([co.load('t', 'fail-in-flight', 'test reload'), co.pauseTask('t')]);
    expect(paused.state).toBe('paused');
    expect(co.getRunner('t').record.state).toBe('paused');
  });
});
