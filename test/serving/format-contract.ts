import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../../server/src/fl/rng.js';
import { sampledId } from '../../server/src/serving/payload-log.js';
import { httpCall, type HttpAnswer } from '../helpers/http-call.js';
import { until } from '../helpers/until.js';
import type { FormatModels, FormatTarget, ServedFormat } from './format-fixtures.js';
import { ADMIN, expectClose, rowsOf, servingApp, type ServingHarness } from './serving-helpers.js';

const RATE = 0.5;
const tensor = (rows: number[][]) => ({ name: 'hidden_input', shape: [rows.length, 8], datatype: 'FP32', data: rows.flat() });
const keyOf = (t: FormatTarget) => (t.variant ? `${t.ref}#${t.variant}` : t.ref);
const query = (t: FormatTarget) => (t.variant ? `?variant=${t.variant}` : '');
const argmax = (r: number[]) => r.indexOf(Math.max(...r));

/**
 * The serving contract every model format passes (tfjs, ONNX, a distilled student served as a
 * variant; format-fixtures.ts builds each), over real HTTP on one server per format: OIP
 * (metadata, JSON and binary tensors, versions, aliases, variants), TF Serving (row and columnar
 * :predict, status, metadata), every deployment type (split, bandit thompson/ucb1, shadow) with
 * the format's targets, deployment and per-version statistics, batching with instances, and the
 * payload log. Answers are compared with the fixture's tfjs reference, never with the server's
 * own earlier answers.
 */
export function servingContract(format: ServedFormat): void {
  if (format.skip) console.log(`skipping the ${format.name} serving contract: ${format.skip}`);
  describe.skipIf(format.skip !== null)(`${format.name} through every serving route, deployment type and statistic`, () => {
    let h: ServingHarness;
    let url: string;
    let f: FormatModels;
    let A: FormatTarget;
    let B: FormatTarget;
    const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => httpCall(url, method, path, ADMIN, body, headers);
    const versionPath = (t: FormatTarget, verb: string) => `/v2/models/${f.model}/versions/${t.ref}/${verb}${query(t)}`;
    /** The answer's rows must equal the reference of the target (A or B) whose version served it. */
    const expectServedBy = async (res: HttpAnswer, rows: number[][]) => {
      expect(res.status, res.text).toBe(200);
      const i = res.json.model_version === A.ref ? 0 : 1;
      expect(res.json.model_version).toBe([A, B][i].ref);
      expect(res.headers.get('x-model-variant') ?? 'float32').toBe([A, B][i].variant ?? 'float32');
      expectClose(res.json.outputs[0].data, (await f.reference(i as 0 | 1, rows)).flat());
      return i;
    };
    const deploy = async (json: Record<string, unknown>) => {
      const res = await call('POST', '/api/v1/deployments', { model: f.model, ...json });
      expect(res.status, res.text).toBe(201);
    };
    const inferVia = (name: string, id: string, rows: number[][], headers: Record<string, string> = {}) => call('POST', `/v2/models/${name}/infer`, { id, inputs: [tensor(rows)] }, headers);

    beforeAll(async () => {
      h = await servingApp({ serving: { rng: createRng(20261201), payloadSampleRate: RATE } });
      await h.app.listen({ port: 0, host: '127.0.0.1' });
      url = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
      f = await format.setup(h, url);
      [A, B] = f.targets;
      expect((await call('PUT', `/api/v1/models/${f.model}/aliases/production`, { version: Number(A.ref) })).status).toBe(200);
    }, 120_000);
    afterAll(async () => {
      await h?.app.close();
    });

    it('OIP: metadata names the inputs and outputs with datatypes and shapes', async () => {
      for (const t of [A, B]) {
        const meta = await call('GET', `/v2/models/${f.model}/versions/${t.ref}${query(t)}`);
        expect(meta.status, meta.text).toBe(200);
        expect(meta.json).toMatchObject({ platform: f.platform, inputs: [{ name: 'hidden_input', datatype: 'FP32', shape: [-1, 8] }], outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 3] }] });
        expect(meta.json.parameters.variant ?? 'float32').toBe(t.variant ?? 'float32');
        expect((await call('GET', `/v2/models/${f.model}/versions/${t.ref}/ready${query(t)}`)).json).toEqual({ name: f.model, ready: true });
      }
      const latest = await call('GET', `/v2/models/${f.model}${query(B)}`);
      expect(latest.json.parameters).toMatchObject({ model: f.model, routed: [B.ref] });
      expect(latest.json.parameters.variant ?? 'float32').toBe(B.variant ?? 'float32');
      const bogus = await call('GET', `/v2/models/${f.model}/versions/${A.ref}?variant=int3`);
      expect(bogus.status).toBe(400);
      expect(bogus.json.code).toBe('FL_ERR_SERVING_BAD_INPUT');
    });

    it('OIP: infers with JSON data for an explicit version, an alias and latest, each as the reference computes', async () => {
      const rows = rowsOf(3, 2);
      const [a, b] = [await f.reference(0, rows), await f.reference(1, rows)];
      expect(Math.max(...a.flat().map((x, k) => Math.abs(x - b.flat()[k])))).toBeGreaterThan(1e-3);
      const res = await call('POST', versionPath(A, 'infer'), { id: 'json-1', inputs: [tensor(rows)] });
      expect(await expectServedBy(res, rows)).toBe(0);
      expect(res.json.outputs[0]).toMatchObject({ name: 'logits', datatype: 'FP32', shape: [3, 3] });
      expect(res.json.parameters.variant).toBe(A.variant ?? 'float32');
      const alias = await call('POST', `/v2/models/${f.model}/versions/production/infer${query(A)}`, { inputs: [tensor(rows)] });
      expect(await expectServedBy(alias, rows)).toBe(0);
      const latest = await call('POST', `/v2/models/${f.model}/infer${query(B)}`, { inputs: [tensor(rows)] });
      expect(await expectServedBy(latest, rows)).toBe(1);
    });

    it('OIP: infers with binary tensors (a request built by hand) and answers output bytes', async () => {
      const rows = rowsOf(2, 4);
      const header = Buffer.from(JSON.stringify({ id: 'bin-1', inputs: [{ name: 'hidden_input', shape: [2, 8], datatype: 'FP32', parameters: { binary_data_size: 64 } }], parameters: { binary_data_output: true } }));
      const res = await fetch(url + versionPath(A, 'infer'), {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
        body: Buffer.concat([header, Buffer.from(Float32Array.from(rows.flat()).buffer)]),
      });
      expect(res.status).toBe(200);
      const body = Buffer.from(await res.arrayBuffer());
      const n = Number(res.headers.get('inference-header-content-length'));
      const head = JSON.parse(body.subarray(0, n).toString());
      expect(head).toMatchObject({ id: 'bin-1', model_version: A.ref, outputs: [{ name: 'logits', shape: [2, 3], parameters: { binary_data_size: 24 } }] });
      const floats = new Float32Array(body.buffer.slice(body.byteOffset + n, body.byteOffset + body.length));
      expectClose(Array.from(floats), (await f.reference(0, rows)).flat());
    });

    it('OIP: a weights variant is served where the format has it, else refused with its code', async () => {
      if (f.int8 === null) return; // the student is itself a variant: it has none of its own
      const oip = await call('POST', `/v2/models/${f.model}/versions/${A.ref}/infer?variant=int8`, { inputs: [tensor(rowsOf(1))] });
      const tfs = await call('POST', `/v1/models/${f.model}/versions/${A.ref}:predict?variant=int8`, { instances: rowsOf(1) });
      for (const res of [oip, tfs]) {
        if (f.int8 === 'served') {
          expect(res.status).toBe(200);
          expect(res.headers.get('x-model-variant')).toBe('int8');
        } else {
          expect(res.status).toBe(f.int8.status);
          expect(res.json.code).toBe(f.int8.code);
        }
      }
    });

    it('TF Serving: :predict in row and columnar form, by version and label, with status and metadata', async () => {
      const rows = rowsOf(4, 3);
      const want = (await f.reference(0, rows)).flat();
      const base = `/v1/models/${f.model}/versions/${A.ref}`;
      const row = await call('POST', `${base}:predict${query(A)}`, { instances: rows });
      expect(row.status, row.text).toBe(200);
      expect(row.json.model_version).toBe(A.ref);
      expectClose(row.json.predictions.flat(), want);
      const named = await call('POST', `${base}:predict${query(A)}`, { instances: rows.map((r) => ({ hidden_input: r })) });
      expectClose(named.json.predictions.flat(), want);
      const col = await call('POST', `${base}:predict${query(A)}`, { inputs: { hidden_input: rows } });
      expectClose(col.json.outputs.flat(), want);
      const label = await call('POST', `/v1/models/${f.model}/labels/production:predict${query(A)}`, { inputs: rows });
      expect(label.json.model_version).toBe(A.ref);
      expectClose(label.json.outputs.flat(), want);
      const latest = await call('POST', `/v1/models/${f.model}:predict${query(B)}`, { instances: rows });
      expect(latest.json.model_version).toBe(B.ref);
      expectClose(latest.json.predictions.flat(), (await f.reference(1, rows)).flat());
      const status = await call('GET', `${base}${query(A)}`);
      expect(status.json).toEqual({ model_version_status: [{ version: A.ref, state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } }] });
      const meta = (await call('GET', `${base}/metadata${query(A)}`)).json;
      expect(meta.model_spec).toEqual({ name: f.model, signature_name: '', version: A.ref });
      const sig = meta.metadata.signature_def.signature_def.serving_default;
      expect(sig.inputs.hidden_input.tensor_shape.dim.map((d: { size: string }) => d.size)).toEqual(['-1', '8']);
      expect(sig.outputs.logits).toMatchObject({ dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '-1' }, { size: '3' }] } });
    });

    it('split: by weight and sticky by routing key, each answer its target\'s, with deployment stats', async () => {
      await deploy({ name: 'split', routing: { mode: 'split', sticky: true, targets: [{ ...A, weight: 1 }, { ...B, weight: 3 }] } });
      const served = [0, 0];
      for (let i = 0; i < 60; i++) {
        const rows = rowsOf(1, i);
        const res = await inferVia('split', `s-${i}`, rows, { 'x-routing-key': `user-${i}` });
        expect(res.headers.get('x-deployment')).toBe('split');
        served[await expectServedBy(res, rows)]++;
      }
      expect(served[1] / 60).toBeGreaterThan(0.55);
      expect(served[1] / 60).toBeLessThan(0.95);
      const sticky = new Set<string>();
      for (let i = 0; i < 6; i++) sticky.add((await inferVia('split', `again-${i}`, rowsOf(1, i), { 'x-routing-key': 'user-7' })).json.model_version);
      expect(sticky.size).toBe(1);
      const stats = (await call('GET', '/api/v1/deployments/split/stats')).json;
      expect(stats).toMatchObject({ deployment: 'split', model: f.model, mode: 'split', requests: 66, errors: 0 });
      expect(stats.latencyMs.total.count).toBe(66);
      expect(stats.latencyMs.total.p50).toBeGreaterThan(0);
      const byTarget = Object.fromEntries(stats.versions.map((v: { target: string; requests: number }) => [v.target, v.requests]));
      expect(Object.keys(byTarget).sort()).toEqual([keyOf(A), keyOf(B)].sort());
      expect(byTarget[keyOf(A)] + byTarget[keyOf(B)]).toBe(66);
      expect(stats.versions.find((v: { target: string }) => v.target === keyOf(B))).toMatchObject({ currentVersion: Number(B.ref) });
    });

    for (const algorithm of ['thompson', 'ucb1'] as const) {
      it(`bandit (${algorithm}): feedback is credited to the target that served, arms are in the stats`, async () => {
        const name = `bandit-${algorithm}`;
        await deploy({ name, routing: { mode: 'bandit', algorithm, targets: [A, B] } });
        const served: number[] = [];
        for (let i = 0; i < 60; i++) {
          const rows = rowsOf(1, 100 + i);
          const k = await expectServedBy(await inferVia(name, `${name}-${i}`, rows), rows);
          served.push(k);
          // B converts every request it serves, A none.
          const fb = await call('POST', `/api/v1/deployments/${name}/feedback`, { requestId: `${name}-${i}`, reward: k === 1 ? 1 : 0 });
          expect(fb.status, fb.text).toBe(200);
          expect(fb.json.credited).toEqual({ target: keyOf([A, B][k]), version: Number([A, B][k].ref) });
        }
        expect(served.slice(30).filter((k) => k === 1).length / 30).toBeGreaterThan(0.7);
        const stats = (await call('GET', `/api/v1/deployments/${name}/stats`)).json;
        expect(stats.bandit.algorithm).toBe(algorithm);
        const arms = Object.fromEntries(stats.bandit.arms.map((a: { key: string }) => [a.key, a]));
        expect(Object.keys(arms).sort()).toEqual([keyOf(A), keyOf(B)].sort());
        expect(arms[keyOf(A)].rewards + arms[keyOf(B)].rewards).toBe(60);
        expect(stats.requests).toBe(60);
      });
    }

    it('shadow: never answers with the shadow; agreement and latency difference as the references predict', async () => {
      await deploy({ name: 'shadow', routing: { mode: 'shadow', primary: A, shadow: B, percent: 100 } });
      let agreed = 0;
      let absDiff = 0;
      for (let i = 0; i < 30; i++) {
        const rows = rowsOf(2, 200 + i);
        expect(await expectServedBy(await inferVia('shadow', `sh-${i}`, rows), rows)).toBe(0);
        const [a, b] = [await f.reference(0, rows), await f.reference(1, rows)];
        a.forEach((r, k) => {
          if (argmax(r) === argmax(b[k])) agreed++;
          r.forEach((x, j) => (absDiff += Math.abs(x - b[k][j])));
        });
      }
      // Mirrored requests complete after their answers: wait until all have.
      const stats = await until(async () => {
        const st = (await call('GET', '/api/v1/deployments/shadow/stats')).json;
        return st.shadow.completed + st.shadow.failed >= 30 && st;
      }, 'the 30 mirrored requests to complete');
      expect(stats.shadow).toMatchObject({ target: keyOf(B), percent: 100, mirrored: 30, completed: 30, failed: 0, rowsCompared: 60 });
      expect(Math.abs(stats.shadow.agreement - agreed / 60)).toBeLessThanOrEqual(1 / 60 + 1e-9);
      expect(stats.shadow.meanAbsDiff).toBeCloseTo(absDiff / 180, 4);
      expect(typeof stats.shadow.latencyDiffMs.mean).toBe('number');
      expect(stats.shadow.shadowLatencyMs.count).toBe(30);
      const roles = Object.fromEntries(stats.versions.map((v: { target: string; role: string; requests: number }) => [v.target, [v.role, v.requests]]));
      expect(roles).toEqual({ [keyOf(A)]: ['primary', 30], [keyOf(B)]: ['shadow', 30] });
    });

    it('GET /api/v1/serving: each loaded target with its format, requests, latency histogram and batches', async () => {
      const s = (await call('GET', '/api/v1/serving')).json;
      for (const t of [A, B]) {
        const m = s.models.find((x: { model: string; version: number; variant: string }) => x.model === f.model && x.version === Number(t.ref) && x.variant === (t.variant ?? 'float32'));
        expect(m, keyOf(t)).toMatchObject({ format: f.servingFormat });
        expect(m.requests).toBeGreaterThan(30);
        expect(m.coldStartMs.total).toBeGreaterThan(0);
        expect(m.latencyMs.compute.count).toBeGreaterThan(0);
        expect(m.latencyMs.total.p99).toBeGreaterThanOrEqual(m.latencyMs.total.p50);
        expect(Object.values(m.batcher.batchSizes as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(m.batcher.batches);
      }
    });

    it('logs exactly the sampled requests with the target\'s rows, outputs and variant', async () => {
      const ids = Array.from({ length: 16 }, (_, i) => `pl-${i}`);
      for (const [i, id] of ids.entries()) expect((await call('POST', versionPath(B, 'infer'), { id, inputs: [tensor(rowsOf(1, 300 + i))] })).status).toBe(200);
      const page = (await call('GET', `/api/v1/models/${f.model}/payloads?version=${B.ref}&limit=500`)).json;
      expect(page.sampling.rate).toBe(RATE);
      const logged = page.payloads.filter((p: { requestId: string }) => p.requestId.startsWith('pl-'));
      const want = ids.filter((id) => sampledId(id, RATE));
      expect(want.length).toBeGreaterThan(3);
      expect(logged.map((p: { requestId: string }) => p.requestId)).toEqual([...want].reverse());
      for (const p of logged) {
        const rows = rowsOf(1, 300 + Number(p.requestId.slice(3)));
        expect(p).toMatchObject({ model: f.model, version: Number(B.ref), input: { shape: [1, 8] }, output: { shape: [1, 3] } });
        expect(p.variant ?? 'float32').toBe(B.variant ?? 'float32');
        expectClose(p.input.data, rows[0]);
        expectClose(p.output.data, (await f.reference(1, rows)).flat());
      }
      // A serving replica forwards the records its own payload log wrote: the coordinator takes them as they are.
      const replica = (await call('POST', '/api/v1/tokens', { role: 'serving' })).json.token;
      const report = await httpCall(url, 'POST', '/api/v1/edge/reports', replica, { source: 'replica-1', kind: 'replica', payloads: [{ ...logged[0], requestId: 'edge-1' }] });
      expect(report.json, report.text).toMatchObject({ payloadsAccepted: 1, payloadsDropped: 0 });
    });

    it('batches concurrent requests through instances, each answer its own', async () => {
      await deploy({ name: 'inst', routing: { mode: 'split', targets: [A] }, batching: { maxBatchSize: 16, maxQueueDelayMs: 20, maxQueueSize: 1024, timeoutMs: 30_000, delay: 'fixed', instances: 2 } });
      const entry = async () => (await call('GET', '/api/v1/serving')).json.models.find((x: { model: string; version: number; variant: string }) => x.model === f.model && x.version === Number(A.ref) && x.variant === (A.variant ?? 'float32'));
      const before = await entry();
      const xs = Array.from({ length: 32 }, (_, i) => rowsOf(1, 400 + i));
      const answers = await Promise.all(xs.map((rows, i) => inferVia('inst', `inst-${i}`, rows)));
      for (const [i, res] of answers.entries()) expect(await expectServedBy(res, xs[i])).toBe(0);
      const after = await entry();
      expect(after.instances).toMatchObject({ size: 2 });
      expect(after.instances.backend).toMatch(f.instancesBackend);
      expect(after.batcher.rows - before.batcher.rows).toBe(32);
      expect(after.batcher.batches - before.batcher.batches).toBeLessThan(32);
    });
  });
}
