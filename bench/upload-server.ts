/**
 * Child process of bench/model-upload.ts: a Flotilla server on a free loopback port (embedded
 * storage in a temp dir) that samples its own RSS every 10 ms and answers the peak since the last
 * reset on stdin commands, so the parent measures the server alone, not its own upload client.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { buildApp } from '../server/src/app.js';

const dataDir = await mkdtemp(join(tmpdir(), 'flotilla-upload-bench-'));
const app = await buildApp({ dataDir, adminToken: 'bench-admin-token-0123456789', processMetrics: false, authRateLimit: false, logger: false });
await app.listen({ port: 0, host: '127.0.0.1' });
let peak = process.memoryUsage().rss;
setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10).unref();
console.log(JSON.stringify({ url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, dataDir }));
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'reset') {
    global.gc?.();
    peak = process.memoryUsage().rss;
    console.log(JSON.stringify({ rss: peak }));
  } else if (line === 'peak') console.log(JSON.stringify({ peak: Math.max(peak, process.memoryUsage().rss), rss: process.memoryUsage().rss }));
  else if (line === 'quit') break;
}
await app.close();
process.exit(0);
