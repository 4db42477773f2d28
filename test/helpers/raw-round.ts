import { f32Codec } from '@flotilla/protocol';
import type { RawDevice } from './raw-device.js';

/**
 * One fit report from a raw device the way the SDK sends it: `fit:ready` (announcing the encoded
 * size) for an upload slot, then `fit:report`. Returns the report's ack (or the refused
 * `fit:ready` ack).
 */
export async function sendReport(
  d: RawDevice,
  taskId: string,
  round: number,
  delta: Float32Array,
  over: Record<string, unknown> = {},
): Promise<any> {
  const bytes = f32Codec.encode(delta);
  const ready = await d.send('fit:ready', { taskId, round, bytes: bytes.byteLength });
  if (!ready.ok) return ready;
  return d.send('fit:report', { taskId, round, numExamples: 10, metrics: { loss: 1 }, codec: 'f32', delta: bytes, ...over });
}
