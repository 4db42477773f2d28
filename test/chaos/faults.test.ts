import { afterEach, describe, expect, it } from 'vitest';
import { FlotillaClient, LocalTrainer } from '@flotilla/client';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { nextEvent, startServer } from '../helpers/server.js';
import { synthetic } from '../helpers/synthetic.js';
import { until } from '../helpers/until.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Issue 7 faults at test size: dropouts and stragglers absorbed by over-selection, and a device
 * that loses its connection mid-round and still reports within the deadline.
 */
describe('faults', () => {
  let app: FlotillaApp;
  let clients: FlotillaClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    clients = [];
    await app.close();
  });

  it('commits every round when 30% of the selected vanish and 10% answer after the deadline; late reports get a code', async () => {
    const s = await startServer();
    app = s.app;
    const co = app.flotilla.coordinator;
    // 24 devices; 10 per round over-selected by 2 -> 20 selected; ~6 vanish, ~2 straggle: ~12 report in time.
    // The deadline leaves a loaded machine time to train the ~12; stragglers are late by construction
    // (they report once their round has ended), not by outsleeping it.
    const deadlineMs = 12_000;
    await co.createTask({ id: 'f', preset: 'tiny-mlp', plan: { clientsPerRound: 10, overSelect: 2, minReports: 6, roundDeadlineMs: deadlineMs, maxRounds: 3, seed: 3 } });
    const rounds: RoundRecord[] = [];
    co.events.on('round', (r: RoundRecord) => rounds.push(r));
    const ended = (round: number) => (rounds.some((r) => r.round === round) ? Promise.resolve() : nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === round, 120_000).then(() => undefined));
    const trainer = new LocalTrainer();
    let seed = 11;
    const rand = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 4294967296);
    const late: string[] = [];
    const unanswered = new Set<string>(); // "device round" of stragglers that sent and await their answer
    let vanished = 0;
    let straggled = 0;
    for (let i = 0; i < 24; i++) {
      const data = synthetic(60, i);
      const c: FlotillaClient = new FlotillaClient({
        url: s.url,
        token: app.flotilla.deviceToken,
        taskId: 'f',
        data: { train: () => data },
        trainer,
        reconnect: { initialDelayMs: 100, maxDelayMs: 300 },
        hooks: {
          beforeReport: async ({ round }) => {
            const x = rand();
            if (x < 0.3) {
              vanished++;
              void c.stop().then(() => sleep(300)).then(() => c.start()); // vanishes mid-round, comes back later
              return 'drop';
            }
            if (x < 0.4) {
              straggled++;
              await ended(round); // straggler: answers after its round closed
              unanswered.add(`${i} ${round}`);
            }
            return 'send';
          },
        },
      });
      const answered = (round: number) => unanswered.delete(`${i} ${round}`);
      c.on('rejected', (e) => {
        answered(e.round);
        late.push(e.error.code);
      });
      c.on('fit', (e) => answered(e.round));
      c.on('error', () => {});
      clients.push(c);
    }
    await Promise.all(clients.map((c) => c.start()));
    const done = nextEvent<{ state: string }>(co.events, 'task', (t) => t.state === 'done', 100_000);
    await co.startTask('f');
    await done.catch((err: Error) => {
      const seen = rounds.map((r) => ({ round: r.round, state: r.state, why: r.failureReason, selected: r.selected.length, reported: r.reported.length, dropped: r.dropped.length }));
      throw new Error(`${err.message}; rounds so far: ${JSON.stringify(seen)}; connected: ${co.sessions.size}`);
    });
    await until(() => unanswered.size === 0, 'every straggler that reported heard its answer', 30_000);
    expect(rounds.map((r) => r.state)).toEqual(['done', 'done', 'done']);
    for (const r of rounds) {
      expect(r.selected.length).toBe(20);
      expect(r.reported.length).toBeGreaterThanOrEqual(6);
      expect(r.endedAt! - r.startedAt).toBeLessThan(deadlineMs + 3000); // nothing waits past the deadline
    }
    expect(vanished).toBeGreaterThan(0);
    expect(straggled).toBeGreaterThan(0);
    expect(rounds.some((r) => r.dropped.length > 0)).toBe(true);
    expect(late.length).toBeGreaterThan(0);
    expect(late.every((c) => c === 'FL_ERR_ROUND_LATE_REPORT' || c === 'FL_ERR_ROUND_WRONG_ROUND')).toBe(true);
  });

  it('a device that reconnects mid-round still reports within the deadline and counts as a participant', async () => {
    const s = await startServer();
    app = s.app;
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 'r', preset: 'tiny-mlp', plan: { clientsPerRound: 2, overSelect: 1, roundDeadlineMs: 30_000, maxRounds: 1, epochs: 30, batchSize: 4 } });
    const trainer = new LocalTrainer();
    for (let i = 0; i < 2; i++) {
      const data = synthetic(100, 50 + i);
      const c = new FlotillaClient({ url: s.url, token: app.flotilla.deviceToken, taskId: 'r', data: { train: () => data }, trainer, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
      c.on('error', () => {});
      clients.push(c);
    }
    await Promise.all(clients.map((c) => c.start()));
    const done = nextEvent<RoundRecord>(co.events, 'round', () => true, 60_000);
    await co.startTask('r');
    await sleep(300); // both are training now (several seconds of local work)
    const victim = clients[0].deviceId!;
    co.sessions.get(victim)!.socket.conn.close(); // its connection dies mid-round
    await nextEvent(clients[0], 'connected', () => true, 10_000);
    const r = await done;
    expect(r.state).toBe('done');
    expect(r.reported).toContain(victim);
    expect(r.dropped).not.toContain(victim);
  });
});
