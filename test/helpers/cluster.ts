import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { f32Codec, PROTOCOL_VERSION, type FitInstruction } from '@flotilla/protocol';
import { admin, startChildServer, type ChildServer } from './child-server.js';

/** N `flotilla serve --cluster-redis-url` processes sharing one data dir (SQLite + file blobs) and one Redis. */
export interface TestCluster {
  nodes: ChildServer[];
  dataDir: string;
  /** Start node i again (after a kill), same id and data dir. */
  restart(i: number): Promise<ChildServer>;
  /** The kept output (info log) of every node started, killed ones included, labelled. */
  output(): string;
  stop(): Promise<void>;
}

export async function startCluster(redisUrl: string, n = 3, leaseMs = 3000, env: Record<string, string> = {}): Promise<TestCluster> {
  const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-cluster-'));
  const start = (i: number) =>
    startChildServer({ dataDir, env, startTimeoutMs: 180_000, logLevel: 'info', nodeArgs: ['--max-old-space-size=512'], args: ['--cluster-redis-url', redisUrl, '--cluster-node-id', `n${i}`, '--cluster-lease-ms', String(leaseMs)] });
  const nodes = await Promise.all(Array.from({ length: n }, (_, i) => start(i)));
  const retired: Array<{ label: string; node: ChildServer }> = [];
  return {
    nodes,
    dataDir,
    restart: async (i) => {
      retired.push({ label: `n${i} (before restart ${retired.length + 1})`, node: nodes[i] });
      return (nodes[i] = await start(i));
    },
    output: () => [...retired, ...nodes.map((node, i) => ({ label: `n${i}`, node }))].map((x) => `---- ${x.label}: last lines ----\n${x.node.output()}`).join('\n'),
    stop: async () => {
      await Promise.all(nodes.map((s) => s.stop('SIGKILL').catch(() => undefined)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** When a test of the calling suite fails, print the nodes' logs (they are kept, not shown, otherwise). */
export function showClusterOutputOnFailure(get: () => TestCluster | undefined): void {
  beforeEach((ctx) => {
    ctx.onTestFailed(() => console.error(get()?.output() ?? 'no cluster started'));
  });
}

/** The delta device `k` reports in round `r` (deterministic, so the test can recompute every aggregate). */
export function deltaOf(k: number, r: number, length: number): Float32Array {
  const d = new Float32Array(length);
  for (let i = 0; i < length; i++) d[i] = Math.sin(k * 31 + r * 7 + i * 0.37) * 0.01;
  return d;
}
export const examplesOf = (k: number) => 5 + k;

/**
 * A scripted device over a raw socket.io-client: it connects with a fixed id in the handshake auth, answers every
 * fit:instruction at once with deltaOf(k, round) (while `answering`), and when its connection
 * drops it reconnects to the next node in `urls`, as a device behind a load balancer would.
 */
export class ClusterDevice {
  socket: Socket | null = null;
  answering = true;
  closed = false;
  readonly instructions: FitInstruction[] = [];
  readonly acks: Array<{ round: number; ok: boolean; code?: string }> = [];
  nodeIndex: number;
  hellos = 0;

  constructor(
    readonly urls: () => string[],
    start: number,
    readonly k: number,
    readonly taskId: string,
    readonly token: string,
    readonly length: number,
  ) {
    this.nodeIndex = start;
    this.connect();
  }

  get deviceId(): string {
    return `dev-${this.k}`;
  }

  private connect(): void {
    if (this.closed) return;
    const urls = this.urls();
    const auth = { protocolVersion: PROTOCOL_VERSION, token: this.token, taskId: this.taskId, deviceId: this.deviceId };
    const s = io(urls[this.nodeIndex % urls.length], { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 3000, auth });
    this.socket = s;
    // Credentials travel in the handshake; the server answers an admitted device with `session`.
    s.on('session', () => this.hellos++);
    s.on('fit:instruction', (m: FitInstruction) => {
      this.instructions.push(m);
      if (this.answering) void this.report(m.round);
    });
    const again = () => {
      s.removeAllListeners();
      s.close();
      if (this.closed) return;
      this.nodeIndex++;
      setTimeout(() => this.connect(), 100);
    };
    s.on('disconnect', again);
    s.on('connect_error', again);
  }

  async report(round: number): Promise<void> {
    const s = this.socket;
    if (!s) return;
    try {
      const delta = f32Codec.encode(deltaOf(this.k, round, this.length));
      // The protocol's order: ask for an upload slot of this size, then send the report once granted.
      const ready = await s.timeout(15_000).emitWithAck('fit:ready', { taskId: this.taskId, round, bytes: delta.byteLength });
      const ack = !ready.ok
        ? ready
        : await s.timeout(15_000).emitWithAck('fit:report', { taskId: this.taskId, round, numExamples: examplesOf(this.k), metrics: { loss: 1 / (this.k + 1) }, codec: 'f32', delta });
      this.acks.push({ round, ok: ack.ok, code: ack.error?.code });
    } catch {
      this.acks.push({ round, ok: false, code: 'timeout' });
    }
  }

  close(): void {
    this.closed = true;
    this.socket?.removeAllListeners();
    this.socket?.close();
  }
}

export async function weightsOf(s: ChildServer, model: string, version: number): Promise<Float32Array> {
  const res = await fetch(`${s.url}/api/v1/models/${model}/versions/${version}/weights.bin`, { headers: { authorization: `Bearer ${s.adminToken}` } });
  if (!res.ok) throw new Error(`weights ${version}: ${res.status}`);
  const b = new Uint8Array(await res.arrayBuffer());
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export { until } from './until.js';
export { admin };
