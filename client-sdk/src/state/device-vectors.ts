import type { DeviceStateStore } from './device-state-store.js';

/**
 * Named float32 vectors of one device and task in a DeviceStateStore, under keys
 * `<deviceId>/<taskId>/<name>`, so one store may serve several devices and tasks. Stored as an
 * 8-byte header ("FLS1", element count as u32 little-endian) and the floats little-endian.
 * `load` answers null for a missing value and for one of another length (the task's model changed:
 * the state starts again from zero) or with a foreign header.
 *
 * Changes are staged and written together by `commit` (the client commits once the coordinator
 * accepted the round's report, so state and what the server has folded stay in step).
 */
const MAGIC = [0x46, 0x4c, 0x53, 0x31]; // "FLS1"
const HEADER = 8;

export function encodeVector(v: Float32Array): Uint8Array {
  const out = new Uint8Array(HEADER + v.byteLength);
  out.set(MAGIC);
  const dv = new DataView(out.buffer);
  dv.setUint32(4, v.length, true);
  for (let i = 0; i < v.length; i++) dv.setFloat32(HEADER + 4 * i, v[i], true);
  return out;
}

export function decodeVector(b: Uint8Array, length: number): Float32Array | null {
  if (b.byteLength !== HEADER + 4 * length || MAGIC.some((m, i) => b[i] !== m)) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint32(4, true) !== length) return null;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = dv.getFloat32(HEADER + 4 * i, true);
  return out;
}

export class DeviceVectors {
  private readonly staged = new Map<string, Float32Array>();

  constructor(
    private readonly store: DeviceStateStore,
    private readonly prefix: string,
  ) {}

  static for(store: DeviceStateStore, deviceId: string, taskId: string): DeviceVectors {
    return new DeviceVectors(store, `${deviceId}/${taskId}/`);
  }

  /** The committed vector `name` of exactly `length` floats, or null. */
  async load(name: string, length: number): Promise<Float32Array | null> {
    const b = await this.store.get(this.prefix + name);
    return b ? decodeVector(b, length) : null;
  }

  /** Stage a new value, written by the next commit. */
  stage(name: string, v: Float32Array): void {
    this.staged.set(name, v);
  }

  async commit(): Promise<void> {
    const writes = [...this.staged].map(([name, v]) => this.store.set(this.prefix + name, encodeVector(v)));
    this.staged.clear();
    await Promise.all(writes);
  }

  discard(): void {
    this.staged.clear();
  }
}
