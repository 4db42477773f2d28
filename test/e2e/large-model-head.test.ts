import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaClient, type FitEvent } from '@flotilla/client';
import { resolveBackend } from '@flotilla/model';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { runAdminCli } from '../../server/src/cli/admin-cli.js';
import { mobilenetLike } from '../helpers/mobilenet-like.js';
import { saveModelDir } from '../helpers/model-dir.js';
import { nextEvent, startServer } from '../helpers/server.js';

const ADMIN = 'admin-token-for-large-model-test-0123';

/**
 * Issue 13 part 7: a MobileNet-like model of more than 20 MB, written as model.json plus 4 MB
 * shards, uploaded with `flotilla tasks create --model DIR --start` (streamed tar), then two
 * devices train only its dense head for two rounds. Every report carries the head's bytes and
 * nothing else; the frozen base is bit-identical in every version.
 */
describe('a 20 MB+ model whose head alone trains', () => {
  let app: FlotillaApp;
  let url: string;
  let dir: string;
  let weightBytes = 0;
  const clients: FlotillaClient[] = [];

  beforeAll(async () => {
    await resolveBackend('node');
    // No weight variants: this test is about what travels, and variants of 24 MB cost seconds per commit.
    ({ app, url } = await startServer({ adminToken: ADMIN, registry: { variants: [] } }));
    dir = await mkdtemp(join(tmpdir(), 'flotilla-large-'));
    const model = mobilenetLike();
    ({ weightBytes } = await saveModelDir(model, join(dir, 'my-model')));
    model.dispose();
  }, 300_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const cli = async (args: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = await runAdminCli([...args, '--url', url, '--token', ADMIN], {}, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
    return { code, stdout, stderr };
  };

  it('refuses a bad plan before uploading anything', async () => {
    await writeFile(join(dir, 'bad.json'), JSON.stringify({ clientsPerRound: 2, trainableLayers: ['no_such_layer'] }));
    const r = await cli(['tasks', 'create', 'photos-bad', '--model', join(dir, 'my-model'), '--plan', `@${join(dir, 'bad.json')}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FL_ERR_MODEL_IMPORT_NOT_TRAINABLE/);
    expect(await app.flotilla.store.getModel('photos-bad')).toBeNull();
  });

  it('uploads it with the CLI, commits rounds, and each report is exactly the head', async () => {
    expect(weightBytes).toBeGreaterThanOrEqual(20 * 1024 * 1024);
    await writeFile(join(dir, 'plan.json'), JSON.stringify({ clientsPerRound: 2, overSelect: 1, maxRounds: 2, batchSize: 4, learningRate: 0.1, trainableLayers: ['head'], roundDeadlineMs: 120_000 }));
    const made = await cli(['tasks', 'create', 'photos', '--model', join(dir, 'my-model'), '--plan', `@${join(dir, 'plan.json')}`, '--start']);
    expect(made.stderr).toMatch(new RegExp(`uploaded .* as photos version 1 \\(${weightBytes} bytes of weights\\)`));
    expect(made.code).toBe(0);
    const task = (await app.flotilla.store.getTask('photos'))!;
    expect(task.state).toBe('running');
    const head = task.spec.manifest.filter((s) => s.trainable !== false);
    expect(head.map((s) => s.name).sort()).toEqual(['head/bias', 'head/kernel']);
    const headBytes = 4 * head.reduce((a, s) => a + s.size, 0);
    expect(headBytes).toBe(4 * (1024 * 10 + 10));

    const co = app.flotilla.coordinator;
    const rounds: RoundRecord[] = [];
    co.events.on('round', (r: RoundRecord) => r.taskId === 'photos' && rounds.push(r));
    const done = nextEvent<{ id: string; state: string }>(co.events, 'task', (t) => t.id === 'photos' && t.state === 'done', 240_000);
    const fits: FitEvent[] = [];
    for (let d = 0; d < 2; d++) {
      // A few tiny 8x8x3 images per device, class ids as labels.
      const n = 6;
      // Small inputs: the random base's logits grow with its input (no biases), and saturated
      // softmax outputs are clipped by the loss, which then gives the head no gradient at all.
      const x = new Float32Array(n * 8 * 8 * 3).map((_, i) => 1e-3 * Math.sin(i * (d + 1)));
      const y = new Int32Array(n).map((_, i) => (i + d) % 10);
      const c = new FlotillaClient({ url, token: app.flotilla.deviceToken, taskId: 'photos', deviceId: `cam-${d}`, data: { train: () => ({ x, y, inputSize: 8 * 8 * 3 }) } });
      c.on('fit', (e) => fits.push(e));
      clients.push(c);
      await c.start();
    }
    await done;
    expect(rounds.map((r) => r.state)).toEqual(['done', 'done']);
    for (const r of rounds) expect(r.bytesUp).toBe(2 * (12 + headBytes));
    await expect.poll(() => fits.length, { timeout: 30_000 }).toBe(4);
    for (const f of fits) {
      expect(f.bytesUp).toBe(12 + headBytes);
      expect(f.bytesDown).toBe(weightBytes);
    }
    const reg = app.flotilla.registry;
    const [v1, v3] = [await reg.readWeights(await reg.getVersion('photos', 1)), await reg.readWeights(await reg.getVersion('photos', 3))];
    // Frozen weights bit-identical; the head moved (its bias always gets a gradient; the kernel's
    // depends on the random base's features).
    for (const s of task.spec.manifest) {
      const a = Buffer.from(v1.buffer, 4 * s.offset, 4 * s.size);
      const b = Buffer.from(v3.buffer, 4 * s.offset, 4 * s.size);
      if (s.trainable === false) expect(b.equals(a), s.name).toBe(true);
      if (s.name === 'head/bias') expect(b.equals(a), s.name).toBe(false);
    }
    const lineage = await cli(['models', 'lineage', 'photos', '3', '--json']);
    expect(JSON.parse(lineage.stdout).lineage.map((e: any) => e.version)).toEqual([3, 2, 1]);
    // Head-only training needs no convolution gradient, so devices stay on wasm.
    expect(tf.getBackend()).toBe('wasm');
  }, 600_000);
});
