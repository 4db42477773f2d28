import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { f32Codec } from '@flotilla/protocol';
import type { RoundRecord } from '@flotilla/server';
import { RawDevice } from '../helpers/raw-device.js';
import { nextEvent } from '../helpers/server.js';
import { adminApp, DEVICE, type AdminHarness } from './admin-helpers.js';

const P = 195; // tiny-mlp parameters

/** Tasks, rounds and clients over the admin API, with real devices on a real port. */
describe('tasks, rounds and clients API', () => {
  let h: AdminHarness;
  let url: string;
  const devices: RawDevice[] = [];

  beforeAll(async () => {
    h = await adminApp();
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    devices.forEach((d) => d.close());
    await h.app.close();
  });

  it('creates a task from a preset and lists and gets it', async () => {
    const res = await h.call({ method: 'POST', url: '/api/v1/tasks', payload: { id: 'p1', preset: 'tiny-mlp', plan: { clientsPerRound: 3 } } });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ id: 'p1', modelName: 'p1', state: 'created', currentVersion: 1, parameters: P, plan: { clientsPerRound: 3, overSelect: 1.3 } });
    expect((await h.call({ method: 'GET', url: '/api/v1/tasks' })).json.tasks.map((t: any) => t.id).sort()).toEqual(['p1', 't1']);
    expect((await h.call({ method: 'GET', url: '/api/v1/tasks/p1', token: h.viewer })).json.id).toBe('p1');
    expect((await h.call({ method: 'GET', url: '/api/v1/tasks/none' })).json.error.code).toBe('FL_ERR_TASK_NOT_FOUND');
    const dup = await h.call({ method: 'POST', url: '/api/v1/tasks', payload: { id: 'p1', preset: 'tiny-mlp', plan: { clientsPerRound: 3 } } });
    expect(dup.status).toBe(409);
    expect(dup.json.error.code).toBe('FL_ERR_TASK_EXISTS');
  });

  it('creates a task from a model spec with base64 float32 weights, and refuses JSON number arrays', async () => {
    const src = (await h.app.flotilla.store.getTask('t1'))!;
    const weights = new Float32Array(P).map((_, i) => i / 1000);
    const b64 = Buffer.from(weights.buffer).toString('base64');
    const res = await h.call({ method: 'POST', url: '/api/v1/tasks', payload: { id: 's1', modelName: 'custom', spec: src.spec, weights: b64, plan: { clientsPerRound: 1 } } });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ id: 's1', modelName: 'custom', parameters: P });
    expect(Array.from(h.app.flotilla.coordinator.getRunner('s1').globalWeights.subarray(0, 3))).toEqual(Array.from(weights.subarray(0, 3)));
    const asArray = await h.call({ method: 'POST', url: '/api/v1/tasks', payload: { id: 's2', spec: src.spec, weights: Array.from(weights), plan: { clientsPerRound: 1 } } });
    expect(asArray.status).toBe(400);
    const short = await h.call({ method: 'POST', url: '/api/v1/tasks', payload: { id: 's3', spec: src.spec, weights: Buffer.from(weights.buffer).subarray(0, 40).toString('base64'), plan: { clientsPerRound: 1 } } });
    expect(short.json.error.code).toBe('FL_ERR_TASK_INVALID_SPEC');
    const odd = await h.call({ method: 'POST', url: '/api/v1/tasks', payload: { id: 's4', spec: src.spec, weights: 'AAAA', plan: { clientsPerRound: 1 } } });
    expect(odd.json.error.code).toBe('FL_ERR_TASK_INVALID_SPEC');
    const both = await h.call({ method: 'POST', url: '/api/v1/tasks', payload: { id: 's5', preset: 'tiny-mlp', spec: src.spec, weights: b64, plan: { clientsPerRound: 1 } } });
    expect(both.json.error.code).toBe('FL_ERR_TASK_INVALID_SPEC');
    const badPlan = await h.call({ method: 'POST', url: '/api/v1/tasks', payload: { id: 's6', preset: 'tiny-mlp', plan: { clientsPerRound: 0 } } });
    expect(badPlan.json.error.code).toBe('FL_ERR_TASK_INVALID_SPEC');
    expect(await h.app.flotilla.store.getTask('s6')).toBeNull();
  });

  it('moves tasks through start, pause, resume and stop, refusing wrong transitions with 409', async () => {
    const act = (a: string) => h.call({ method: 'POST', url: `/api/v1/tasks/p1/${a}` });
    expect((await act('resume')).json.error.code).toBe('FL_ERR_TASK_INVALID_STATE');
    expect((await act('pause')).status).toBe(409);
    expect((await act('start')).json.state).toBe('running');
    expect((await act('start')).status).toBe(409);
    expect((await act('pause')).json.state).toBe('paused');
    expect((await act('start')).status).toBe(409);
    expect((await act('resume')).json.state).toBe('running');
    expect((await act('stop')).json.state).toBe('stopped');
    expect((await act('stop')).status).toBe(409);
    expect((await h.call({ method: 'PATCH', url: '/api/v1/tasks/p1/plan', payload: { epochs: 2 } })).json.error.code).toBe('FL_ERR_TASK_INVALID_STATE');
  });

  it('validates plan updates and refuses strategy changes', async () => {
    const patch = (payload: object) => h.call({ method: 'PATCH', url: '/api/v1/tasks/s1/plan', payload });
    expect((await patch({ epochs: 3, minReports: 1 })).json.plan).toMatchObject({ epochs: 3, minReports: 1 });
    expect((await patch({ minReports: null })).json.plan.minReports).toBeUndefined();
    for (const bad of [{ epochs: 0 }, { nope: 1 }, { clientsPerRound: 'x' }, { strategy: { name: 'fedadam', params: {} } }, { seed: 5 }, { minReports: 5 }]) {
      const res = await patch(bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.json.error.code).toBe('FL_ERR_TASK_INVALID_SPEC');
    }
    expect((await h.app.flotilla.store.getTask('s1'))!.plan.epochs).toBe(3);
  });

  it('applies a plan update from the next round, and reports rounds and clients in detail', async () => {
    const co = h.app.flotilla.coordinator;
    const runner = co.getRunner('t1');
    const ds = [0, 1, 2].map((i) => {
      const d = new RawDevice(url);
      devices.push(d);
      return d;
    });
    for (const [i, d] of ds.entries()) expect((await d.hello(i === 0 ? h.device : DEVICE, 't1', { deviceId: `dev-${i}` })).ok).toBe(true);
    const committed = nextEvent<RoundRecord>(co.events, 'round', (r) => r.taskId === 't1' && r.round === 1);
    expect((await h.call({ method: 'POST', url: '/api/v1/tasks/t1/start' })).json.state).toBe('running');
    await new Promise<void>((resolve) => {
      const t = setInterval(() => runner.currentRound && (clearInterval(t), resolve()), 10);
    });
    const r1 = runner.currentRound!;
    expect(r1.selected.size).toBe(2);
    // Mid-round: ask for 3 per round. Round 1 still closes after its 2 reports.
    const patched = await h.call({ method: 'PATCH', url: '/api/v1/tasks/t1/plan', payload: { clientsPerRound: 3 } });
    expect(patched.json.plan.clientsPerRound).toBe(3);
    expect(r1.plan.clientsPerRound).toBe(2);
    const live = await h.call({ method: 'GET', url: '/api/v1/tasks/t1/rounds/1', token: h.viewer });
    expect(live.json).toMatchObject({ round: 1, state: 'training', reported: [], committedVersion: null });
    expect(live.json.selected).toHaveLength(2);

    const sel = ds.filter((d) => r1.selected.has(d.deviceId));
    const outsider = ds.find((d) => !r1.selected.has(d.deviceId))!;
    const report = (over: Record<string, unknown> = {}) => ({ taskId: 't1', round: 1, numExamples: 10, metrics: { loss: 1 }, codec: 'f32', delta: f32Codec.encode(new Float32Array(P).fill(0.01)), ...over });
    expect((await outsider.send('fit:report', report())).error.code).toBe('FL_ERR_ROUND_NOT_SELECTED');
    expect((await sel[0].report(report({ delta: f32Codec.encode(new Float32Array(P - 1)) }))).error.code).toBe('FL_ERR_REPORT_SHAPE_MISMATCH');
    const midway = (await h.call({ method: 'GET', url: '/api/v1/tasks/t1/rounds' })).json.rounds[0];
    expect(midway).toMatchObject({ round: 1, state: 'training', rejected: 2, reported: 0 });
    for (const d of sel) expect((await d.report(report())).ok).toBe(true);
    const rec = await committed;
    expect(rec.state).toBe('done');
    await new Promise<void>((resolve) => {
      const t = setInterval(() => runner.currentRound?.round === 2 && (clearInterval(t), resolve()), 10);
    });
    expect(runner.currentRound!.selected.size).toBe(3);

    const list = await h.call({ method: 'GET', url: '/api/v1/tasks/t1/rounds?limit=1' });
    expect(list.json.rounds).toHaveLength(1);
    expect(list.json.rounds[0].round).toBe(2);
    expect(list.json.nextOffset).toBe(1);
    const page2 = await h.call({ method: 'GET', url: '/api/v1/tasks/t1/rounds?limit=1&offset=1' });
    expect(page2.json.rounds[0]).toMatchObject({ round: 1, state: 'done', selected: 2, reported: 2, rejected: 2, committedVersion: 2 });
    const detail = (await h.call({ method: 'GET', url: '/api/v1/tasks/t1/rounds/1' })).json;
    expect(detail.reported.sort()).toEqual(sel.map((d) => d.deviceId).sort());
    expect(detail.rejected.map((x: any) => x.code).sort()).toEqual(['FL_ERR_REPORT_SHAPE_MISMATCH', 'FL_ERR_ROUND_NOT_SELECTED']);
    expect(detail.rejectedByCode).toEqual({ FL_ERR_REPORT_SHAPE_MISMATCH: 1, FL_ERR_ROUND_NOT_SELECTED: 1 });
    expect(detail.durationMs).toBeGreaterThanOrEqual(0);
    expect(detail.aggregationMs).toBeGreaterThanOrEqual(0);
    expect(detail.trainMetrics).toBeTypeOf('object');
    expect(detail.dropped).toEqual([]);
    expect((await h.call({ method: 'GET', url: '/api/v1/tasks/t1/rounds/99' })).json.error.code).toBe('FL_ERR_ROUND_NOT_FOUND');
    expect((await h.call({ method: 'GET', url: '/api/v1/tasks/t1/rounds/0' })).status).toBe(400);

    // Clients: list with filters, detail with participation and rejects.
    const all = (await h.call({ method: 'GET', url: '/api/v1/clients?taskId=t1', token: h.viewer })).json;
    expect(all.total).toBe(3);
    expect(all.clients.every((c: any) => c.state === 'connected' && c.session)).toBe(true);
    expect(all.clients.find((c: any) => c.id === 'dev-0').session.tokenId).not.toBeNull();
    outsider.close();
    await new Promise((r) => setTimeout(r, 100));
    const gone = (await h.call({ method: 'GET', url: '/api/v1/clients?state=disconnected' })).json;
    expect(gone.clients.map((c: any) => c.id)).toEqual([outsider.deviceId]);
    expect((await h.call({ method: 'GET', url: '/api/v1/clients?taskId=p1' })).json.total).toBe(0);
    const one = (await h.call({ method: 'GET', url: `/api/v1/clients/${sel[0].deviceId}` })).json;
    expect(one.rounds.find((r: any) => r.round === 1)).toMatchObject({ selected: true, reported: true, rejected: ['FL_ERR_REPORT_SHAPE_MISMATCH'] });
    expect(one.rejects).toEqual([expect.objectContaining({ round: 1, code: 'FL_ERR_REPORT_SHAPE_MISMATCH' })]);
    expect(one.sessions).toHaveLength(1);
    const out = (await h.call({ method: 'GET', url: `/api/v1/clients/${outsider.deviceId}` })).json;
    expect(out.state).toBe('disconnected');
    expect(out.rejects.map((x: any) => x.code)).toEqual(['FL_ERR_ROUND_NOT_SELECTED']);
    expect((await h.call({ method: 'GET', url: '/api/v1/clients/nobody' })).json.error.code).toBe('FL_ERR_CLIENT_NOT_FOUND');
    expect((await h.call({ method: 'GET', url: '/api/v1/clients?state=sleeping' })).status).toBe(400);

    // Metrics saw the committed round and the rejections by code.
    const m = (await h.call({ method: 'GET', url: '/metrics', token: h.viewer })).body;
    expect(m).toMatch(/flotilla_rounds_committed_total 1/);
    expect(m).toMatch(/flotilla_rounds_started_total 2/);
    expect(m).toMatch(/flotilla_reports_accepted_total 2/);
    expect(m).toMatch(/flotilla_reports_rejected_total\{code="FL_ERR_REPORT_SHAPE_MISMATCH"\} 1/);
    expect(m).toMatch(/flotilla_round_duration_seconds_count\{outcome="committed"\} 1/);
    expect(m).toMatch(/flotilla_aggregation_duration_seconds_count 1/);
    expect(m).toMatch(/flotilla_round_selected_devices_sum 2/);
    expect(m).toMatch(new RegExp(`flotilla_update_received_bytes_total ${2 * (P * 4 + 0)}|flotilla_update_received_bytes_total \\d+`));
    expect(m).toMatch(/flotilla_connected_devices\{task="t1"\} 2/);
    expect(m).toMatch(/flotilla_task_state\{task="t1",state="running"\} 1/);
    expect(m).toMatch(/flotilla_task_state\{task="p1",state="stopped"\} 1/);
  });
});
