#!/usr/bin/env node
// A coordinator that also serves the browser device page, for trying browser devices locally:
//   node examples/browser-device/serve.mjs [--port 8080] [--data-dir ./flotilla-data]
// then open the printed URL in two or more tabs (change `seed=` per tab: each tab holds other data).
// It creates the task `tiny` (tiny-mlp preset: 8 features, 3 classes; 2 devices a round) if missing.
import { parseArgs } from 'node:util';
import { buildApp } from '@flotilla/server';
import { mountBrowserDevice } from './assets.mjs';

const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' }, 'data-dir': { type: 'string', default: './flotilla-data' }, 'clients-per-round': { type: 'string', default: '2' } } });
const app = await buildApp({ dataDir: values['data-dir'] });
await mountBrowserDevice(app);
await app.listen({ port: Number(values.port), host: '127.0.0.1' });
const { coordinator, deviceToken } = app.flotilla;
if (!coordinator.listRunners().some((r) => r.id === 'tiny')) {
  const plan = { clientsPerRound: Number(values['clients-per-round']), overSelect: 1, maxRounds: 1000, epochs: 2, batchSize: 16, learningRate: 0.2, roundDeadlineMs: 60_000 };
  await coordinator.createTask({ id: 'tiny', preset: 'tiny-mlp', plan, start: true });
}
const { port } = app.server.address();
console.log(`browser device: http://127.0.0.1:${port}/device/?task=tiny&seed=1&token=${encodeURIComponent(deviceToken)}`);
console.log(`admin token (REST API, flotilla CLI): ${app.flotilla.adminToken}`);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => app.close().then(() => process.exit(0)));
