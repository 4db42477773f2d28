import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { resolveBackend, setFlatWeights } from '@flotilla/model';
import type { InstanceInit, InstanceReply, InstanceRequest } from './instance-pool.js';
import { predictPacked } from './tfjs-predict.js';

/**
 * One model instance (see instance-pool.ts): builds the model from its topology and flat weights
 * on this thread's own tfjs backend, warms it, then answers `run` messages: reads `rows` rows
 * from the shared input buffer, writes the output rows to the shared output buffer, and replies
 * with a small message. Tensors never cross threads as JSON or copies of messages.
 */
const init = workerData.init as InstanceInit;
const port = parentPort!;

await resolveBackend('node');
const model = await tf.models.modelFromJSON({ modelTopology: init.topology } as unknown as tf.io.ModelJSON);
setFlatWeights(model, init.weights, init.manifest);
const rowWidth = init.io.rowWidth;
let input = new Float32Array(init.input);
let output = new Float32Array(init.output);

function predict(rows: number): number {
  const out = predictPacked(model, init.io, input.slice(0, rows * rowWidth), rows);
  output.set(out);
  return out.length;
}
predict(Math.min(init.warmRows, Math.floor(input.length / rowWidth)));

port.on('message', (m: InstanceRequest) => {
  if (m.type === 'buffers') {
    input = new Float32Array(m.input);
    output = new Float32Array(m.output);
    return;
  }
  if (m.type === 'crash') process.exit(70); // a test's stand-in for a native crash
  let reply: InstanceReply;
  try {
    reply = { type: 'done', job: m.job, length: predict(m.rows) };
  } catch (err) {
    reply = { type: 'failed', job: m.job, message: (err as Error).message };
  }
  port.postMessage(reply);
});
port.postMessage({ type: 'ready', backend: tf.getBackend() } satisfies InstanceReply);
