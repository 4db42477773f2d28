import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeploymentRecord, InputStatsRecord, PayloadRecord } from '../../server/src/store/records.js';
import type { Store } from '../../server/src/store/store.js';
import { expectCode, round, task, version } from './fixtures.js';

/**
 * The one Store contract suite (docs/architecture.md, "Storage": every implementation passes the same suite). Each
 * implementation's test file calls `storeContract` with a factory. `reopen`, when given, closes
 * nothing itself: it returns a fresh Store over the same durable state (the durability tests).
 */
export interface StoreHarness {
  open(): Promise<Store>;
  reopen?: () => Promise<Store>;
  cleanup?: () => Promise<void>;
}

export function storeContract(name: string, makeHarness: () => Promise<StoreHarness>): void {
  describe(`Store contract: ${name}`, () => {
    let h: StoreHarness;
    let s: Store;

    beforeEach(async () => {
      h = await makeHarness();
      s = await h.open();
      await s.init();
    });
    afterEach(async () => {
      await s.close();
      await h.cleanup?.();
    });

    it('answers ping', async () => {
      expect(await s.ping()).toBe(true);
    });

    it('creates a task with its model, initial version and latest alias', async () => {
      const t = task('mnist', { strategyState: { m: [0.5, 1] }, stateReason: 'started by test' });
      await s.createTask(t, version('mnist', 1, { taskId: 'mnist', description: 'initial', tags: ['init'] }));
      expect(await s.getTask('mnist')).toEqual(t);
      expect(await s.getTask('nope')).toBeNull();
      expect((await s.listTasks()).map((x) => x.id)).toEqual(['mnist']);
      expect((await s.getModel('mnist'))?.name).toBe('mnist');
      expect(await s.getModel('nope')).toBeNull();
      expect((await s.listModels()).map((m) => m.name)).toEqual(['mnist']);
      expect(await s.getVersion('mnist', 1)).toEqual(version('mnist', 1, { taskId: 'mnist', description: 'initial', tags: ['init'] }));
      expect(await s.getVersion('mnist', 2)).toBeNull();
      expect((await s.getAlias('mnist', 'latest'))?.version).toBe(1);
      const hist = await s.aliasHistory('mnist', 'latest');
      expect(hist).toHaveLength(1);
      expect(hist[0]).toMatchObject({ from: null, to: 1 });
    });

    it('rejects a duplicate task and an existing initial version without changing anything', async () => {
      await s.createTask(task('a'), version('a', 1));
      await expectCode(s.createTask(task('a', { state: 'done' }), version('a', 2)), 'FL_ERR_TASK_EXISTS');
      await expectCode(s.createTask(task('b', { modelName: 'a' }), version('a', 1)), 'FL_ERR_VERSION_IMMUTABLE');
      expect(await s.getTask('b')).toBeNull();
      expect((await s.getTask('a'))?.state).toBe('running');
      expect(await s.getVersion('a', 2)).toBeNull();
    });

    it('returns copies: mutating a returned record changes nothing stored', async () => {
      await s.createTask(task('a'), version('a', 1, { tags: ['x'] }));
      const t = (await s.getTask('a'))!;
      t.state = 'failed';
      t.spec.numClasses = 99;
      const v = (await s.getVersion('a', 1))!;
      v.tags.push('mutated');
      v.metrics.accuracy = 1;
      expect((await s.getTask('a'))!.state).toBe('running');
      expect((await s.getTask('a'))!.spec.numClasses).toBe(3);
      expect((await s.getVersion('a', 1))!.tags).toEqual(['x']);
      expect((await s.getVersion('a', 1))!.metrics).toEqual({});
    });

    it('updates a task by merging a patch and bumping updatedAt', async () => {
      await s.createTask(task('a'), version('a', 1));
      const before = Date.now();
      const next = await s.updateTask('a', { state: 'paused', stateReason: 'operator' });
      expect(next).toMatchObject({ id: 'a', state: 'paused', stateReason: 'operator', currentVersion: 1 });
      expect(next.updatedAt).toBeGreaterThanOrEqual(before);
      expect(await s.getTask('a')).toEqual(next);
      await expectCode(s.updateTask('nope', { state: 'done' }), 'FL_ERR_TASK_NOT_FOUND');
    });

    it('saves, replaces and lists rounds newest first with paging', async () => {
      await s.createTask(task('a'), version('a', 1));
      for (let r = 1; r <= 5; r++) await s.saveRound(round('a', r));
      await s.saveRound(round('b', 1));
      const full = round('a', 3, {
        state: 'failed',
        failureReason: 'deadline',
        endedAt: 1_700_000_009_000,
        reported: ['c1'],
        rejected: [{ clientId: 'c2', code: 'FL_ERR_REPORT_NON_FINITE', at: 5 }],
        dropped: ['c3'],
        trainMetrics: { loss: 0.5 },
        aggregationMs: 1.5,
        bytesUp: 10,
        bytesDown: 20,
      });
      await s.saveRound(full);
      expect(await s.getRound('a', 3)).toEqual(full);
      expect(await s.getRound('a', 9)).toBeNull();
      expect((await s.listRounds('a')).map((r) => r.round)).toEqual([5, 4, 3, 2, 1]);
      expect((await s.listRounds('a', { limit: 2 })).map((r) => r.round)).toEqual([5, 4]);
      // A secure-aggregation round keeps its view (phases, dropouts by phase, outcome).
      const secure = round('c', 1, {
        secureAggregation: {
          protocol: 'secagg+',
          threshold: 3,
          degree: 4,
          phases: [{ phase: 'advertise', startedAt: 1, endedAt: 2, devices: 5 }, { phase: 'unmask', startedAt: 3, endedAt: null, devices: 4 }],
          dropped: { masked: ['c4'] },
          outcome: 'failed',
          reason: 'too few',
          bytesUp: 100,
          bytesDown: 50,
        },
      });
      await s.saveRound(secure);
      expect(await s.getRound('c', 1)).toEqual(secure);
      expect((await s.listRounds('a', { limit: 2, offset: 2 })).map((r) => r.round)).toEqual([3, 2]);
      expect((await s.listRounds('a', { offset: 4 })).map((r) => r.round)).toEqual([1]);
      expect(await s.listRounds('zzz')).toEqual([]);
    });

    it('commits a round atomically: version, round, task and latest together', async () => {
      await s.createTask(task('a', { strategyState: { step: 0 } }), version('a', 1));
      await s.saveRound(round('a', 1));
      const v2 = version('a', 2, { taskId: 'a', round: 1, parentVersion: 1, metrics: { accuracy: 0.8, participants: 2 } });
      const r1 = round('a', 1, { state: 'done', committedVersion: 2, reported: ['c1', 'c2'], endedAt: 1_700_000_000_900 });
      await s.commitRound({
        task: { id: 'a', currentVersion: 2, nextRound: 2, strategyState: { step: 1 }, screeningState: [0.5, 1.25] },
        round: r1,
        version: v2,
        by: 'coordinator',
      });
      expect(await s.getVersion('a', 2)).toEqual(v2);
      expect(await s.getRound('a', 1)).toEqual(r1);
      expect(await s.getTask('a')).toMatchObject({ currentVersion: 2, nextRound: 2, strategyState: { step: 1 }, screeningState: [0.5, 1.25], state: 'running', modelName: 'a' });
      expect(await s.getAlias('a', 'latest')).toMatchObject({ version: 2, updatedBy: 'coordinator' });
      expect((await s.aliasHistory('a', 'latest'))[0]).toMatchObject({ from: 1, to: 2, by: 'coordinator', action: 'set' });
    });

    it("a commit never writes the task's state: a pause stored after the committer read the task stands", async () => {
      await s.createTask(task('a', { state: 'running' }), version('a', 1));
      const seen = (await s.getTask('a'))!; // what a committing leader holds
      await s.updateTask('a', { state: 'paused', stateReason: 'paused by operator' }); // another node's pause
      await s.commitRound({
        task: { ...seen, currentVersion: 2, nextRound: 2 } as never, // a whole stale record, state 'running' included
        round: round('a', 1, { state: 'done', committedVersion: 2 }),
        version: version('a', 2),
        by: 'coordinator',
      });
      expect(await s.getTask('a')).toMatchObject({ currentVersion: 2, nextRound: 2, state: 'paused', stateReason: 'paused by operator' });
    });

    it('refuses to commit an existing version number and changes nothing', async () => {
      await s.createTask(task('a'), version('a', 1));
      const commit = (r: number, v: number, metrics: Record<string, number>) =>
        s.commitRound({
          task: { id: 'a', currentVersion: v, nextRound: r + 1 },
          round: round('a', r, { state: 'done', committedVersion: v }),
          version: version('a', v, { metrics }),
          by: 'coordinator',
        });
      await commit(1, 2, { accuracy: 0.5 });
      const hist = await s.aliasHistory('a');
      await expectCode(commit(2, 2, { accuracy: 0.9 }), 'FL_ERR_VERSION_IMMUTABLE');
      expect((await s.getVersion('a', 2))!.metrics).toEqual({ accuracy: 0.5 });
      expect(await s.getRound('a', 2)).toBeNull();
      expect(await s.getTask('a')).toMatchObject({ currentVersion: 2, nextRound: 2 });
      expect(await s.aliasHistory('a')).toEqual(hist);
    });

    it('fences commits: a token below the highest claimed is refused and changes nothing', async () => {
      await s.createTask(task('a'), version('a', 1));
      const commit = (r: number, v: number, fence?: number) =>
        s.commitRound({
          task: { id: 'a', currentVersion: v, nextRound: r + 1 },
          round: round('a', r, { state: 'done', committedVersion: v }),
          version: version('a', v),
          by: 'coordinator',
          ...(fence === undefined ? {} : { fence }),
        });
      await s.claimFence('a', 3);
      await s.claimFence('a', 3); // the same leader claiming again is fine
      await commit(1, 2, 3);
      await s.claimFence('a', 5); // a new leader
      await expectCode(s.claimFence('a', 4), 'FL_ERR_CLUSTER_STALE_LEADER');
      const hist = await s.aliasHistory('a');
      await expectCode(commit(2, 3, 3), 'FL_ERR_CLUSTER_STALE_LEADER'); // the old leader, resumed
      expect(await s.getVersion('a', 3)).toBeNull();
      expect(await s.getRound('a', 2)).toBeNull();
      expect(await s.getTask('a')).toMatchObject({ currentVersion: 2, nextRound: 2 });
      expect(await s.aliasHistory('a')).toEqual(hist);
      await commit(2, 3, 5);
      await commit(3, 4, 6); // a commit carrying a higher token raises the fence with it
      await expectCode(s.claimFence('a', 5), 'FL_ERR_CLUSTER_STALE_LEADER');
      await commit(4, 5); // no token: single-node mode, no fencing
      expect((await s.getAlias('a', 'latest'))!.version).toBe(5);
      await expectCode(s.claimFence('ghost', 1), 'FL_ERR_TASK_NOT_FOUND');
    });

    it('refuses to commit for an unknown task and writes no version', async () => {
      await s.createTask(task('a'), version('a', 1));
      await expectCode(
        s.commitRound({
          task: { id: 'ghost', currentVersion: 2, nextRound: 2 },
          round: round('ghost', 1),
          version: version('a', 2),
          by: 'coordinator',
        }),
        'FL_ERR_TASK_NOT_FOUND',
      );
      expect(await s.getVersion('a', 2)).toBeNull();
      expect(await s.getRound('ghost', 1)).toBeNull();
      expect((await s.getAlias('a', 'latest'))!.version).toBe(1);
    });

    it('publishes versions outside rounds, creating the model and moving latest', async () => {
      await s.putVersion(version('uploaded', 1, { description: 'from a notebook' }), 'alice');
      await s.putVersion(version('uploaded', 2), 'alice');
      expect((await s.getModel('uploaded'))?.name).toBe('uploaded');
      expect(await s.getAlias('uploaded', 'latest')).toMatchObject({ version: 2, updatedBy: 'alice' });
      await expectCode(s.putVersion(version('uploaded', 2, { tags: ['x'] }), 'bob'), 'FL_ERR_VERSION_IMMUTABLE');
      expect((await s.getVersion('uploaded', 2))!.tags).toEqual([]);
      expect(await s.getAlias('uploaded', 'latest')).toMatchObject({ version: 2, updatedBy: 'alice' });
    });

    it('stores an ONNX version (a signature, no tfjs spec) and gives it back as written', async () => {
      const { spec: _spec, ...rest } = version('onnx', 1, { artifacts: [{ name: 'model.onnx', sha256: 'b'.repeat(64), size: 120 }] });
      const onnx = { irVersion: 8, opset: 13, producer: 'test', inputs: [{ name: 'x', elemType: 'FLOAT', shape: [-1, 2] }], outputs: [{ name: 'y', elemType: 'FLOAT', shape: [-1, 1] }], opTypes: ['Gemm'] };
      await s.putVersion({ ...rest, onnx }, 'alice');
      const got = (await s.getVersion('onnx', 1))!;
      expect(got.onnx).toEqual(onnx);
      expect(got.spec ?? undefined).toBeUndefined();
      await s.putVersion(version('onnx', 2), 'alice');
      expect((await s.getVersion('onnx', 2))!.onnx ?? undefined).toBeUndefined();
      expect((await s.getVersion('onnx', 2))!.spec).toEqual(version('onnx', 2).spec);
    });

    it('adds artifacts to a version all or none, never replacing one', async () => {
      await s.putVersion(version('arts', 1), 'alice');
      const student = [{ name: 'weights.distilled', sha256: 'c'.repeat(64), size: 40 }, { name: 'spec.distilled', sha256: 'd'.repeat(64), size: 300 }];
      await s.addVersionArtifacts('arts', 1, student);
      expect((await s.getVersion('arts', 1))!.artifacts.map((x) => x.name)).toEqual(['weights', 'weights.distilled', 'spec.distilled']);
      await expectCode(s.addVersionArtifacts('arts', 1, [{ name: 'other', sha256: 'e'.repeat(64), size: 1 }, { ...student[0], size: 41 }]), 'FL_ERR_VERSION_IMMUTABLE');
      expect((await s.getVersion('arts', 1))!.artifacts).toEqual([version('arts', 1).artifacts[0], ...student]);
      await expectCode(s.addVersionArtifacts('arts', 9, student), 'FL_ERR_VERSION_NOT_FOUND');
    });

    it('lists versions newest first, paged, filtered by tag, alias and archived', async () => {
      for (let v = 1; v <= 6; v++) await s.putVersion(version('m', v, { tags: v % 2 === 0 ? ['even'] : ['odd', 'x'] }), 'system');
      await s.putVersion(version('other', 1, { tags: ['even'] }), 'system');
      expect((await s.listVersions('m')).map((v) => v.version)).toEqual([6, 5, 4, 3, 2, 1]);
      expect((await s.listVersions('m', { limit: 2, offset: 1 })).map((v) => v.version)).toEqual([5, 4]);
      expect((await s.listVersions('m', { tag: 'even' })).map((v) => v.version)).toEqual([6, 4, 2]);
      expect((await s.listVersions('m', { tag: 'even', limit: 1, offset: 1 })).map((v) => v.version)).toEqual([4]);
      expect(await s.listVersions('m', { tag: 'nope' })).toEqual([]);
      await s.setAlias('m', 'production', 3, 'alice');
      expect((await s.listVersions('m', { alias: 'production' })).map((v) => v.version)).toEqual([3]);
      expect(await s.listVersions('m', { alias: 'staging' })).toEqual([]);
      await s.setArchived('m', 5, true);
      expect((await s.listVersions('m')).map((v) => v.version)).toEqual([6, 4, 3, 2, 1]);
      expect((await s.listVersions('m', { includeArchived: true })).map((v) => v.version)).toEqual([6, 5, 4, 3, 2, 1]);
      expect((await s.getVersion('m', 5))!.archived).toBe(true);
      await s.setArchived('m', 5, false);
      expect((await s.listVersions('m')).map((v) => v.version)).toContain(5);
      await expectCode(s.setArchived('m', 99, true), 'FL_ERR_VERSION_NOT_FOUND');
      expect(await s.listVersions('unknown')).toEqual([]);
      expect((await s.listModels()).map((m) => m.name)).toEqual(['m', 'other']);
    });

    it('adds version metrics under new keys only', async () => {
      await s.putVersion(version('m', 1, { metrics: { accuracy: 0.5 } }), 'system');
      await s.addVersionMetrics('m', 1, { accuracy: 0.99, central_accuracy: 0.7, 'int8:central_accuracy': 0.69 });
      expect((await s.getVersion('m', 1))!.metrics).toEqual({ accuracy: 0.5, central_accuracy: 0.7, 'int8:central_accuracy': 0.69 });
      await expectCode(s.addVersionMetrics('m', 2, { x: 1 }), 'FL_ERR_VERSION_NOT_FOUND');
    });

    it('sets, moves, lists and deletes aliases, recording every change', async () => {
      for (let v = 1; v <= 3; v++) await s.putVersion(version('m', v), 'system');
      await expectCode(s.setAlias('m', 'production', 9, 'alice'), 'FL_ERR_VERSION_NOT_FOUND');
      expect(await s.getAlias('m', 'production')).toBeNull();
      const a = await s.setAlias('m', 'production', 1, 'alice');
      expect(a).toMatchObject({ model: 'm', alias: 'production', version: 1, updatedBy: 'alice' });
      expect(await s.getAlias('m', 'production')).toEqual(a);
      await s.setAlias('m', 'production', 2, 'bob');
      await s.setAlias('m', 'production', 1, 'carol', 'rollback');
      await s.setAlias('m', 'staging', 3, 'bob');
      expect((await s.listAliases('m')).map((x) => [x.alias, x.version])).toEqual([
        ['latest', 3],
        ['production', 1],
        ['staging', 3],
      ]);
      await s.deleteAlias('m', 'staging', 'dave');
      expect(await s.getAlias('m', 'staging')).toBeNull();
      await expectCode(s.deleteAlias('m', 'staging', 'dave'), 'FL_ERR_ALIAS_NOT_FOUND');
      // Same-millisecond writes must still read back newest first.
      const prod = await s.aliasHistory('m', 'production');
      expect(prod.map((h) => [h.from, h.to, h.by, h.action])).toEqual([
        [2, 1, 'carol', 'rollback'],
        [1, 2, 'bob', 'set'],
        [null, 1, 'alice', 'set'],
      ]);
      const all = await s.aliasHistory('m');
      expect(all[0]).toMatchObject({ alias: 'staging', from: 3, to: null, by: 'dave', action: 'delete' });
      expect(all.filter((h) => h.alias === 'latest')).toHaveLength(3);
      for (let i = 1; i < all.length; i++) expect(all[i - 1].at).toBeGreaterThanOrEqual(all[i].at);
      expect(await s.aliasHistory('other')).toEqual([]);
    });

    it('upserts and lists clients', async () => {
      const c = { id: 'dev-1', taskId: 'a', firstSeen: 1, lastSeen: 2, roundsJoined: 0, reportsAccepted: 0, reportsRejected: 0, revoked: false };
      await s.upsertClient(c);
      await s.upsertClient({ ...c, id: 'dev-2', taskId: 'b' });
      await s.upsertClient({ ...c, lastSeen: 9, roundsJoined: 3, revoked: true });
      expect(await s.getClient('dev-1')).toEqual({ ...c, lastSeen: 9, roundsJoined: 3, revoked: true });
      expect(await s.getClient('nope')).toBeNull();
      expect((await s.listClients()).map((x) => x.id).sort()).toEqual(['dev-1', 'dev-2']);
      expect((await s.listClients('b')).map((x) => x.id)).toEqual(['dev-2']);
      const many = Array.from({ length: 50 }, (_, i) => ({ ...c, id: `bulk-${i}`, lastSeen: i }));
      await s.upsertClients(many);
      await s.upsertClients([{ ...many[3], reportsAccepted: 7 }]);
      await s.upsertClients([]);
      expect(await s.getClient('bulk-3')).toEqual({ ...many[3], reportsAccepted: 7 });
      expect((await s.listClients('a')).length).toBe(51);
      // The credential a device id is bound to: a token id, null for the bootstrap token, absent when unbound.
      await s.upsertClients([{ ...c, id: 'bound-1', tokenId: 'tok123' }, { ...c, id: 'bound-2', tokenId: null }]);
      expect((await s.getClient('bound-1'))?.tokenId).toBe('tok123');
      expect((await s.getClient('bound-2'))?.tokenId).toBeNull();
      expect(await s.getClient('dev-2')).not.toHaveProperty('tokenId');
    });

    it('counts clients by the credential they are bound to', async () => {
      const c = { id: 'x', taskId: 'a', firstSeen: 1, lastSeen: 2, roundsJoined: 0, reportsAccepted: 0, reportsRejected: 0, revoked: false };
      await s.upsertClients([
        { ...c, id: 't1-a', tokenId: 't1' },
        { ...c, id: 't1-b', tokenId: 't1', revoked: true },
        { ...c, id: 't2-a', tokenId: 't2' },
        { ...c, id: 'boot-a', tokenId: null },
        { ...c, id: 'legacy' },
      ]);
      expect(await s.getClient('boot-a')).toEqual({ ...c, id: 'boot-a', tokenId: null });
      expect(await s.getClient('legacy')).toEqual({ ...c, id: 'legacy' });
      expect(await s.countClientsByToken('t1')).toBe(2);
      expect(await s.countClientsByToken('t2')).toBe(1);
      expect(await s.countClientsByToken(null)).toBe(1);
      expect(await s.countClientsByToken('nope')).toBe(0);
    });

    it('deletes the records of clients not seen since a cutoff, except revoked ones, and says which', async () => {
      const c = { id: 'x', taskId: 'a', firstSeen: 1, lastSeen: 2, roundsJoined: 0, reportsAccepted: 0, reportsRejected: 0, revoked: false };
      await s.upsertClients([
        { ...c, id: 'old-1', lastSeen: 100 },
        { ...c, id: 'old-2', lastSeen: 499, tokenId: 't1' },
        { ...c, id: 'old-revoked', lastSeen: 10, revoked: true },
        { ...c, id: 'edge', lastSeen: 500 },
        { ...c, id: 'new', lastSeen: 900 },
      ]);
      expect((await s.deleteClientsSeenBefore(500)).sort()).toEqual(['old-1', 'old-2']);
      expect((await s.listClients()).map((x) => x.id).sort()).toEqual(['edge', 'new', 'old-revoked']);
      expect(await s.countClientsByToken('t1')).toBe(0);
      expect(await s.deleteClientsSeenBefore(500)).toEqual([]);
    });

    it('stores tokens, refuses a duplicate id, lists newest first and revokes idempotently', async () => {
      const base = { hash: 'a'.repeat(64), createdBy: 'admin', revoked: false } as const;
      await s.putToken({ ...base, id: 't1', role: 'device', taskId: 'mnist', name: 'fleet A', createdAt: 1000, expiresAt: 5000 });
      await s.putToken({ ...base, id: 't2', role: 'viewer', createdAt: 2000 });
      await s.putToken({ ...base, id: 't3', role: 'inference', endpoints: ['prod', 'canary'], createdAt: 500 });
      expect(await s.getToken('t3')).toEqual({ ...base, id: 't3', role: 'inference', endpoints: ['prod', 'canary'], createdAt: 500 });
      await expectCode(s.putToken({ ...base, id: 't1', role: 'admin', createdAt: 3000 }), 'FL_ERR_STORE_CONFLICT');
      expect(await s.getToken('t1')).toEqual({ ...base, id: 't1', role: 'device', taskId: 'mnist', name: 'fleet A', createdAt: 1000, expiresAt: 5000 });
      expect(await s.getToken('t2')).toEqual({ ...base, id: 't2', role: 'viewer', createdAt: 2000 });
      expect(await s.getToken('nope')).toBeNull();
      expect((await s.listTokens()).map((t) => t.id)).toEqual(['t2', 't1', 't3']);
      const got = (await s.getToken('t1'))!;
      got.revoked = true;
      expect((await s.getToken('t1'))!.revoked).toBe(false);
      expect(await s.revokeToken('t1', 4000)).toMatchObject({ id: 't1', revoked: true, revokedAt: 4000 });
      expect(await s.revokeToken('t1', 4500)).toMatchObject({ revoked: true, revokedAt: 4000 });
      expect(await s.revokeToken('nope', 4000)).toBeNull();
      expect((await s.getToken('t2'))!.revoked).toBe(false);
    });

    // ---- serving: deployments, payload log, drift references ----

    const deployment = (name: string, patch: Partial<DeploymentRecord> = {}): DeploymentRecord => ({
      name,
      model: 'mnist',
      routing: { mode: 'split', targets: [{ ref: '1', weight: 1 }, { ref: 'production', variant: 'int8', weight: 3 }], sticky: true },
      createdAt: 1000,
      updatedAt: 1000,
      ...patch,
    });
    const payload = (model: string, version: number, at: number, requestId: string): PayloadRecord => ({
      model,
      version,
      requestId,
      at,
      input: { shape: [1, 2], data: [at, version] },
      output: { shape: [1, 3], data: [0.2, 0.3, 0.5] },
      latencyMs: 1.5,
    });

    it('creates, lists, updates and deletes deployments; duplicates and unknown names answer coded errors', async () => {
      await s.createDeployment(deployment('b', { batching: { maxBatchSize: 8 }, description: 'A/B' }));
      await s.createDeployment(deployment('a', { routing: { mode: 'bandit', algorithm: 'thompson', targets: [{ ref: '1' }, { ref: '2' }] } }));
      await expectCode(s.createDeployment(deployment('a')), 'FL_ERR_DEPLOYMENT_EXISTS');
      expect((await s.getDeployment('a'))!.routing.mode).toBe('bandit');
      expect(await s.getDeployment('b')).toEqual(deployment('b', { batching: { maxBatchSize: 8 }, description: 'A/B' }));
      expect(await s.getDeployment('nope')).toBeNull();
      expect((await s.listDeployments()).map((d) => d.name)).toEqual(['a', 'b']);
      const got = (await s.getDeployment('b'))!;
      got.model = 'mutated';
      expect((await s.getDeployment('b'))!.model).toBe('mnist');
      const state = { arms: [{ key: '1', alpha: 3, beta: 1 }] };
      const next = await s.updateDeployment('a', { state, description: undefined });
      expect(next).toMatchObject({ name: 'a', createdAt: 1000, state });
      expect(next.updatedAt).toBeGreaterThan(1000);
      expect(await s.getDeployment('a')).toEqual(next);
      await expectCode(s.updateDeployment('nope', { state }), 'FL_ERR_DEPLOYMENT_NOT_FOUND');
      await s.deleteDeployment('a');
      expect(await s.getDeployment('a')).toBeNull();
      await expectCode(s.deleteDeployment('a'), 'FL_ERR_DEPLOYMENT_NOT_FOUND');
    });

    it('appends payloads, pages them newest first, filters by version and keeps only the newest `cap` per model', async () => {
      await s.appendPayloads([payload('m', 1, 100, 'r1'), payload('m', 2, 200, 'r2'), payload('other', 1, 50, 'o1')], 3);
      await s.appendPayloads([payload('m', 2, 200, 'r3'), payload('m', 1, 300, 'r4')], 3);
      // Cap 3 dropped r1 (the oldest of model m); model other is untouched.
      expect((await s.listPayloads('m')).map((p) => p.requestId)).toEqual(['r4', 'r3', 'r2']);
      expect(await s.countPayloads('m')).toBe(3);
      expect(await s.countPayloads('m', 2)).toBe(2);
      expect((await s.listPayloads('m', { version: 2 })).map((p) => p.requestId)).toEqual(['r3', 'r2']);
      expect((await s.listPayloads('m', { limit: 1, offset: 1 })).map((p) => p.requestId)).toEqual(['r3']);
      expect(await s.listPayloads('other')).toEqual([payload('other', 1, 50, 'o1')]);
      expect(await s.listPayloads('none')).toEqual([]);
      const first = (await s.listPayloads('m'))[0];
      first.input.data[0] = -1;
      expect((await s.listPayloads('m'))[0].input.data[0]).toBe(300);
    });

    it('stores the drift reference of a version and replaces it', async () => {
      const stats: InputStatsRecord = { model: 'm', version: 1, count: 10, mean: [0.5, 1], variance: [0.25, 2], source: 'first-window', createdAt: 5 };
      await s.putInputStats(stats);
      expect(await s.getInputStats('m', 1)).toEqual(stats);
      expect(await s.getInputStats('m', 2)).toBeNull();
      await s.putInputStats({ ...stats, source: 'publish', count: 100 });
      expect(await s.getInputStats('m', 1)).toMatchObject({ source: 'publish', count: 100 });
    });

    it('keeps deployments, payloads and drift references across a close and reopen (durable stores)', async (ctx) => {
      if (!h.reopen) ctx.skip();
      await s.createDeployment(deployment('d'));
      await s.appendPayloads([payload('m', 1, 100, 'r1')], 10);
      await s.putInputStats({ model: 'm', version: 1, count: 1, mean: [1], variance: [0], source: 'publish', createdAt: 1 });
      await s.close();
      s = await h.reopen!();
      await s.init();
      expect(await s.getDeployment('d')).toEqual(deployment('d'));
      expect((await s.listPayloads('m')).map((p) => p.requestId)).toEqual(['r1']);
      expect((await s.getInputStats('m', 1))!.source).toBe('publish');
    });

    it('keeps everything across a close and reopen (durable stores)', async (ctx) => {
      if (!h.reopen) ctx.skip();
      await s.createTask(task('a'), version('a', 1));
      await s.commitRound({
        task: { id: 'a', currentVersion: 2, nextRound: 2, strategyState: { v: [1, 2] } },
        round: round('a', 1, { state: 'done', committedVersion: 2 }),
        version: version('a', 2, { metrics: { accuracy: 0.5 } }),
        by: 'coordinator',
      });
      await s.setAlias('a', 'production', 2, 'alice');
      await s.close();
      s = await h.reopen!();
      await s.init();
      expect(await s.getTask('a')).toMatchObject({ currentVersion: 2, nextRound: 2, strategyState: { v: [1, 2] } });
      expect((await s.getVersion('a', 2))!.metrics).toEqual({ accuracy: 0.5 });
      expect((await s.getAlias('a', 'production'))!.version).toBe(2);
      expect((await s.getAlias('a', 'latest'))!.version).toBe(2);
      expect(await s.aliasHistory('a')).toHaveLength(3);
    });
  });
}
