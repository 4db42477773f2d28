#!/usr/bin/env node
// A Flotilla device in plain JavaScript (no TypeScript, no build step): it joins a task, trains on
// the data it holds with TensorFlow.js, and reports weight deltas until stopped.
//
//   npm install @flotilla/client
//   FLOTILLA_URL=http://127.0.0.1:8080 FLOTILLA_TOKEN=<device token> FLOTILLA_TASK=tiny node device.mjs
//
// Env: FLOTILLA_URL (default http://127.0.0.1:8080), FLOTILLA_TOKEN (a device token: the server's
// <data-dir>/device-token or one from `flotilla token create --role device`), FLOTILLA_TASK (a task
// whose model takes 8 features and predicts 3 classes, e.g. one created with the `tiny-mlp`
// preset), FLOTILLA_ROUNDS (exit after this many accepted reports; default: run until stopped),
// FLOTILLA_SEED (which local data this device holds), FLOTILLA_EXAMPLES (how many rows).
// Output: one line per event (`fit round=3 examples=200 loss=0.912 bytesUp=1220 ...`).
import { FlotillaClient } from '@flotilla/client';

const env = process.env;
const url = env.FLOTILLA_URL ?? 'http://127.0.0.1:8080';
const token = env.FLOTILLA_TOKEN;
const taskId = env.FLOTILLA_TASK ?? 'tiny';
const maxRounds = env.FLOTILLA_ROUNDS ? Number(env.FLOTILLA_ROUNDS) : Infinity;
const seed = Number(env.FLOTILLA_SEED ?? 1);
const examples = Number(env.FLOTILLA_EXAMPLES ?? 200);
if (!token) {
  console.error('device: set FLOTILLA_TOKEN to a device token');
  process.exit(2);
}

/**
 * This device's own data: in a real app, rows the app collected. Here, a seeded 3-class problem
 * on 8 features (the class is the largest of three fixed linear scores), the shape the tiny-mlp
 * preset expects. Rows go in `x` row-major, integer labels in `y`.
 */
function localData(n, s) {
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296) * 2 - 1;
  const x = new Float32Array(n * 8);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 8; j++) x[i * 8 + j] = rand();
    const f = x.subarray(i * 8, i * 8 + 8);
    const scores = [f[0] + f[1], f[2] - f[3], f[4] + f[5] - f[6]];
    y[i] = scores.indexOf(Math.max(...scores));
  }
  return { x, y, inputSize: 8, numClasses: 3 };
}

const train = localData(examples, seed);
const held = localData(Math.ceil(examples / 4), seed + 7919);
const client = new FlotillaClient({ url, token, taskId, data: { train: () => train, evaluate: () => held } });

let reports = 0;
client.on('connected', (e) => console.log(`connected device=${e.deviceId}`));
client.on('fit', (e) => {
  reports++;
  console.log(`fit round=${e.round} examples=${e.numExamples} loss=${e.loss.toFixed(4)} bytesUp=${e.bytesUp} bytesDown=${e.bytesDown} trainMs=${Math.round(e.trainMs)}`);
  if (reports >= maxRounds) void stop(0);
});
client.on('eval', (e) => console.log(`eval round=${e.round} examples=${e.numExamples} accuracy=${e.metrics.accuracy ?? 'n/a'}`));
client.on('rejected', (e) => console.log(`rejected round=${e.round} code=${e.error.code} ${e.error.message}`));
client.on('task:state', (e) => {
  console.log(`task state=${e.state}${e.reason ? ` reason=${e.reason}` : ''}`);
  if (e.state === 'done' || e.state === 'stopped' || e.state === 'failed') void stop(e.state === 'failed' ? 1 : 0);
});
client.on('disconnected', (e) => console.log(`disconnected reason=${e.reason}`));

async function stop(code) {
  await client.stop();
  process.exit(code);
}
process.on('SIGINT', () => void stop(130));
process.on('SIGTERM', () => void stop(143));

try {
  await client.start(); // rejects on a bad token, unknown task or protocol version mismatch
} catch (err) {
  console.error(`device: ${err.message}`);
  process.exit(1);
}
